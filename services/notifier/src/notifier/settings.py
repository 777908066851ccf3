from oms_servicekit.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    port: int = 8005
    db_name: str = "oms_notifier"
