from oms_servicekit.outbound import OutboundSettings
from oms_servicekit.settings import ServiceSettings


class GatewaySettings(ServiceSettings, OutboundSettings):
    """The gateway's settings; ``OUTBOUND_*`` bound where pull connectors may call
    (loopback allowed by default for development: ``OUTBOUND_ALLOWED_NETWORKS=[]`` in
    production)."""

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
