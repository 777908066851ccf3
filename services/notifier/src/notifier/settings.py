from pydantic import AliasChoices, Field

from oms_servicekit.outbound import (
    DEFAULT_ALLOWED_NETWORKS,
    DEFAULT_BLOCKED_NETWORKS,
    OutboundSettings,
)
from oms_servicekit.settings import ServiceSettings


class NotifierSettings(ServiceSettings, OutboundSettings):
    port: int = 8005
    db_name: str = "oms_notifier"
    #: Where the board's order page reads order history and pick lists (graceful if down).
    order_svc_url: str = "http://127.0.0.1:8001"
    #: Where the board's order page reads the customer card (graceful if down).
    customer_svc_url: str = "http://127.0.0.1:8003"
    #: How long the board waits for another service before showing "unavailable".
    board_peer_timeout_s: float = 2.0
    #: How often the board's live stream checks the database for changes.
    board_stream_interval_s: float = 1.0

    # -- alert deliveries (see notifier.delivery_worker) -------------------------------
    #: Where e-mail goes (``smtp://host:port``, ``smtps://user:pass@host``); empty = mail
    #: deliveries wait (and eventually fail) until it is set.
    smtp_url: str = ""
    smtp_from: str = "oms-notifier@localhost"
    #: Webhook targets follow the outbound policy (``OUTBOUND_*``, see
    #: :class:`OutboundSettings`); the networks also answer to their older names
    #: ``WEBHOOK_BLOCKED_NETWORKS`` / ``WEBHOOK_ALLOWED_NETWORKS``. Loopback is allowed
    #: for local development and tests: set ``OUTBOUND_ALLOWED_NETWORKS=[]`` in production.
    outbound_blocked_networks: list[str] = Field(
        default=list(DEFAULT_BLOCKED_NETWORKS),
        validation_alias=AliasChoices("outbound_blocked_networks", "webhook_blocked_networks"),
    )
    outbound_allowed_networks: list[str] = Field(
        default=list(DEFAULT_ALLOWED_NETWORKS),
        validation_alias=AliasChoices("outbound_allowed_networks", "webhook_allowed_networks"),
    )
    #: One attempt (webhook request or SMTP session), and the connect part of it.
    delivery_attempt_timeout_s: float = 10.0
    delivery_connect_timeout_s: float = 3.0
    #: Backoff between attempts: from base, doubling, capped, with jitter.
    delivery_backoff_base_s: float = 2.0
    delivery_backoff_cap_s: float = 600.0
    #: After this long a delivery that still fails is given up (state failed).
    delivery_max_age_s: float = 24 * 3600.0
    delivery_worker_interval_s: float = 0.5
    #: Sends under way at once (one slow target holds one of them, never the others).
    delivery_concurrency: int = 50
    #: More alerts than this of one type for one subscription in a minute: the rest of
    #: that minute go out as one digest at its end.
    digest_threshold: int = 5
