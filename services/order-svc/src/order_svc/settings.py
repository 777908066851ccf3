from oms_servicekit.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    port: int = 8001
    db_name: str = "oms_order"
