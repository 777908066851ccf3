"""SQLAlchemy Core tables of channel-gateway (the schema itself is in migrations/)."""

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, Uuid

metadata = MetaData()

channels = Table(
    "channels",
    metadata,
    Column("name", Text, primary_key=True),
    Column("type", Text),
    Column("secret", Text),
    Column("created_at", DateTime(timezone=True)),
)

channel_orders = Table(
    "channel_orders",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("channel_order_id", Text, primary_key=True),
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
)
