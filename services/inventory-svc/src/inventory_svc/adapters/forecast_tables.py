"""SQLAlchemy Core tables of the forecast and replenishment part of inventory-svc (the
schema itself is in migrations/versions/0003). Kept apart from ``tables.py`` so the
stock tables and these evolve without touching each other; same ``metadata``."""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

from inventory_svc.adapters.tables import metadata

sales_lines = Table(
    "sales_lines",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", Text),
    Column("warehouse", Text),
    Column("channel", Text),
    Column("day", Date),
    Column("qty", Integer),
    Column("cancelled", Boolean),
    Column("recorded_at", DateTime(timezone=True)),
)

sales_daily = Table(
    "sales_daily",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("warehouse", Text, primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("qty", Integer),
    Column("imported_by", Text),
    Column("updated_at", DateTime(timezone=True)),
)

promotions = Table(
    "promotions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text),
    Column("channel", Text),
    Column("skus", JSONB),
    Column("start_date", Date),
    Column("end_date", Date),
    Column("expected_uplift", Numeric(8, 3)),
    Column("created_by", Text),
    Column("created_at", DateTime(timezone=True)),
)

sku_supply = Table(
    "sku_supply",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("lead_time_days", Integer),
    Column("on_order", JSONB),
    Column("updated_by", Text),
    Column("updated_at", DateTime(timezone=True)),
)

forecasts = Table(
    "forecasts",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("warehouse", Text, primary_key=True),
    Column("model", Text),
    Column("note", Text),
    Column("level", Float),
    Column("history_days", Integer),
    Column("history_end", Date),
    Column("uplift", Float),
    Column("uplift_source", Text),
    Column("points", JSONB),
    Column("computed_at", DateTime(timezone=True)),
)

replenishment_suggestions = Table(
    "replenishment_suggestions",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("warehouse", Text, primary_key=True),
    Column("suggested_qty", Integer),
    Column("reason", Text),
    Column("abc_class", Text),
    Column("computed_at", DateTime(timezone=True)),
    Column("announced_qty", Integer),
    Column("announced_at", DateTime(timezone=True)),
)
