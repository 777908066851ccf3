from oms_servicekit.settings import ServiceSettings


class CustomerSettings(ServiceSettings):
    port: int = 8003
    db_name: str = "oms_customer"
    #: The region phone numbers without a country code are read in (ISO 3166 alpha-2).
    default_phone_region: str = "CN"
