"""SQLAlchemy Core tables of notifier (the schema itself is in migrations/)."""

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

#: Every event seen on any OMS topic, once (by event id).
events = Table(
    "events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    #: Arrival order (newest first in listings; a future cursor for paging).
    Column("seq", BigInteger),
    Column("event_type", Text),
    Column("schema_version", Integer),
    Column("key", Text),
    Column("producer", Text),
    Column("correlation_id", Text),
    Column("causation_id", Text),
    Column("occurred_at", DateTime(timezone=True)),
    Column("received_at", DateTime(timezone=True)),
    Column("payload", JSONB),
)

#: Alerts for people: raised here or by any service (``source``).
alerts = Table(
    "alerts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("alert_type", Text),
    Column("severity", Text),
    Column("subject", Text),
    Column("message", Text),
    Column("details", JSONB),
    Column("source", Text),
    Column("raised_at", DateTime(timezone=True)),
    Column("state", Text),
    Column("created_at", DateTime(timezone=True)),
    #: What subscriptions match on (SlaBreached, OrderExceptionRaised, ...).
    Column("event_type", Text),
    #: Cause and subject: one live (not resolved) alert per key.
    Column("dedupe_key", Text),
    Column("channel", Text),
    Column("warehouse", Text),
    Column("acknowledged_by", Text),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("resolved_by", Text),
    Column("resolved_at", DateTime(timezone=True)),
)

#: Who wants which alerts where (webhook URL, e-mail address or the board).
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text),
    Column("event_types", ARRAY(Text)),
    Column("channel", Text),
    Column("warehouse", Text),
    Column("target_type", Text),
    Column("target", Text),
    Column("secret", Text),
    Column("created_by", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("deleted_by", Text),
    Column("deleted_at", DateTime(timezone=True)),
)

#: Alerts per subscription, alert type and minute (what decides digesting).
alert_windows = Table(
    "alert_windows",
    metadata,
    Column("subscription_id", Uuid, primary_key=True),
    Column("alert_type", Text, primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("alerts", Integer),
    Column("digest_id", Uuid),
)

#: One minute's overflow of one alert type for one subscription, sent as one message.
digests = Table(
    "digests",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("subscription_id", Uuid),
    Column("alert_type", Text),
    Column("window_start", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True)),
)

digest_alerts = Table(
    "digest_alerts",
    metadata,
    Column("digest_id", Uuid, primary_key=True),
    Column("alert_id", Uuid, primary_key=True),
)

#: One alert (or digest) to one subscription, with its retry state.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("subscription_id", Uuid),
    Column("alert_id", Uuid),
    Column("digest_id", Uuid),
    Column("state", Text),
    Column("attempts", Integer),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("give_up_at", DateTime(timezone=True)),
    Column("claimed_until", DateTime(timezone=True)),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)
