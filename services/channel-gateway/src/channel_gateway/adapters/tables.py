"""SQLAlchemy Core tables of channel-gateway (the schema itself is in migrations/)."""

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

channels = Table(
    "channels",
    metadata,
    Column("name", Text, primary_key=True),
    Column("type", Text),
    Column("secret", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("clock_skew_s", Integer),
    Column("split_shipment", Text),
    Column("order_class_rules", JSONB),
    Column("rate_limit_per_min", Integer),
    Column("pull", JSONB),
    Column("updated_at", DateTime(timezone=True)),
)

sku_map = Table(
    "sku_map",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("channel_sku", Text, primary_key=True),
    Column("sku", Text),
)

channel_orders = Table(
    "channel_orders",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("channel_order_id", Text, primary_key=True),
    Column("order_id", Uuid),
    Column("received_at", DateTime(timezone=True)),
    Column("currency", Text),
    Column("lines", JSONB),
    Column("paid_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("shipping_address", JSONB),
    Column("channel_updated_at", DateTime(timezone=True)),
)

delivery_ids = Table(
    "delivery_ids",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("delivery_id", Text, primary_key=True),
    Column("order_id", Uuid),
    Column("received_at", DateTime(timezone=True)),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("channel", Text),
    Column("received_at", DateTime(timezone=True)),
    Column("outcome", Text),
    Column("detail", Text),
    Column("order_id", Uuid),
    Column("delivery_id", Text),
    Column("topic", Text),
)

pull_cursors = Table(
    "pull_cursors",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("cursor", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)
