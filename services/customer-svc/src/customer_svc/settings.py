from oms_servicekit.settings import ServiceSettings


class CustomerSettings(ServiceSettings):
    port: int = 8003
    db_name: str = "oms_customer"
