"""SQLAlchemy Core tables of notifier (the schema itself is in migrations/)."""

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

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
)
