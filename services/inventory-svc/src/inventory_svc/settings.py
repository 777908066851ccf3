from pydantic import Field

from oms_servicekit.settings import ServiceSettings

#: The ledger is kept at least this long, whatever the settings say.
MIN_LEDGER_RETENTION_DAYS = 90


class InventorySettings(ServiceSettings):
    port: int = 8002
    db_name: str = "oms_inventory"
    #: How long a hold for an order not yet confirmed lasts: one still unconfirmed by then
    #: is released by the sweeper (StockReleased, reason "expired"). It applies only to
    #: such holds: once the order is confirmed (OrderConfirmed), its reservations never
    #: expire and are held until the order ships or is cancelled.
    reservation_ttl_s: int = Field(default=24 * 3600, ge=1)
    #: How often the sweeper looks for expired reservations, and how many per run.
    sweep_interval_s: float = 60.0
    sweep_batch: int = Field(default=200, ge=1)
    #: Ledger rows older than this are purged (summed into a balance-forward row).
    ledger_retention_days: int = Field(default=100, ge=MIN_LEDGER_RETENTION_DAYS)
    ledger_purge_interval_s: float = 24 * 3600.0
    #: ABC classes are recomputed this often (and on demand: POST /abc/recompute).
    abc_recompute_interval_s: float = 24 * 3600.0
    #: Channel stock sync-out cadence per ABC class (A is published at every change).
    sync_b_interval_s: float = 8 * 3600.0
    sync_c_interval_s: float = 24 * 3600.0
    #: How often the forecast job looks for A/B forecasts older than yesterday's sales;
    #: it refits them once a day has closed (so "nightly", shortly after 00:00 UTC).
    forecast_refresh_interval_s: float = 3600.0
