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
    #: ``CHANNEL_CACHE_TTL_S``: how long a process keeps a channel's configuration (secret,
    #: settings, SKU map) for its webhooks. A change made through this process applies at
    #: once; other replicas drop their copy on the change notification, and this bounds
    #: how long a copy can outlive a change should that notification be lost. 0: no cache.
    channel_cache_ttl_s: float = 5.0
    #: How often the change listener pings its connection (a silently dead one is
    #: replaced, and the cache cleared, within about this long).
    channel_listener_ping_s: float = 10.0
