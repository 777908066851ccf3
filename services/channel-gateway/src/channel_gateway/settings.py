from oms_servicekit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    port: int = 8004
    db_name: str = "oms_gateway"
    #: Signed requests older (or newer) than this are refused as replays.
    signature_tolerance_s: int = 300
    #: Webhook bodies above this size are refused with 413.
    max_body_bytes: int = 1_048_576
    #: Bulk imports (CSV/XLSX) above this size are refused with 413.
    max_import_bytes: int = 50 * 1_048_576
    #: How often the pull connectors' job looks for pull channels that are due.
    pull_tick_s: float = 5.0
