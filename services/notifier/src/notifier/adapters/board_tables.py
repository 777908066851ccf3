"""SQLAlchemy Core tables of the operations board's read model (schema: migration 0003)."""

from sqlalchemy import Boolean, Column, DateTime, Integer, Numeric, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

from notifier.adapters.tables import metadata

_TS = DateTime(timezone=True)

#: One row per order, as the events told it (latest state wins by time, not arrival).
board_orders = Table(
    "board_orders",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("channel", Text),
    Column("channel_order_id", Text),
    Column("state", Text),
    Column("state_changed_at", _TS),
    Column("state_reason", Text),
    Column("customer_id", Uuid),
    Column("currency", Text),
    Column("total", Numeric(14, 2)),
    Column("priority", Text),
    Column("created_at", _TS),
    Column("credit_degraded", Boolean),
    Column("credit_reason", Text),
    Column("credit_degraded_at", _TS),
    Column("sla_stage", Text),
    Column("sla_deadline", _TS),
    Column("sla_status", Text),
    Column("sla_raised_at", _TS),
    Column("routing", JSONB),
    Column("updated_at", _TS),
)

#: An order's exceptions, one row per cause: open while ``resolved_at`` is NULL.
board_exceptions = Table(
    "board_exceptions",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("cause", Text, primary_key=True),
    Column("exception_id", Uuid),
    Column("channel", Text),
    Column("detail", Text),
    Column("raised_at", _TS),
    Column("parks_order", Boolean),
    Column("resolved_at", _TS),
    Column("resolution", Text),
)

#: Orders created per minute (the throughput sparkline).
board_throughput = Table(
    "board_throughput",
    metadata,
    Column("minute", _TS, primary_key=True),
    Column("orders", Integer),
)

#: SKUs whose pooled stock crossed below their safety stock.
board_low_stock = Table(
    "board_low_stock",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("warehouse", Text),
    Column("available", Integer),
    Column("safety_stock", Integer),
    Column("raised_at", _TS),
)

#: The latest available stock per SKU and warehouse.
board_stock_levels = Table(
    "board_stock_levels",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("warehouse", Text, primary_key=True),
    Column("available", Integer),
    Column("changed_at", _TS),
)

#: Sales of a SKU on a channel: paused or not, as last changed.
board_channel_pauses = Table(
    "board_channel_pauses",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("paused", Boolean),
    Column("reason", Text),
    Column("changed_at", _TS),
)
