from oms_servicekit.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    port: int = 8002
    db_name: str = "oms_inventory"
    #: A reservation not confirmed by then is released by the sweeper.
    reservation_ttl_s: int = 24 * 3600
