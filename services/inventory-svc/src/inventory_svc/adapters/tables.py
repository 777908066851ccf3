"""SQLAlchemy Core tables of inventory-svc (the schema itself is in migrations/)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

warehouses = Table(
    "warehouses",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text),
    Column("region", Text),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("capabilities", JSONB),
    Column("shipping_costs", JSONB),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)

skus = Table(
    "skus",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("name", Text),
    Column("attributes", JSONB),
    Column("created_at", DateTime(timezone=True)),
)

stock = Table(
    "stock",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("warehouse", Text, primary_key=True),
    Column("on_hand", Integer),
    Column("reserved", Integer),
    Column("updated_at", DateTime(timezone=True)),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", Text),
    Column("warehouse", Text),
    Column("channel", Text),
    Column("qty", Integer),
    Column("state", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("unit_price", Numeric(18, 4)),
    Column("closed_at", DateTime(timezone=True)),
    #: The buyer whose cap per customer this line counts against (NULL: not counted).
    Column("buyer", Text),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True)),
    Column("sku", Text),
    Column("warehouse", Text),
    Column("kind", Text),
    Column("reason", Text),
    Column("operator", Text),
    Column("order_id", Uuid),
    Column("delta_on_hand", Integer),
    Column("delta_reserved", Integer),
    Column("on_hand_after", Integer),
    Column("reserved_after", Integer),
)

sku_policies = Table(
    "sku_policies",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("safety_stock", Integer),
    Column("channel_caps", JSONB),
    Column("pause_channels", JSONB),
    Column("abc_override", Text),
    Column("abc_class", Text),
    Column("low", Boolean),
    Column("updated_at", DateTime(timezone=True)),
    #: Units of the SKU one buyer may hold or have bought; NULL: no cap.
    Column("max_per_customer", Integer),
)

#: What each channel holds of a SKU, and its cap in units: the row the cap is guarded on.
channel_allocations = Table(
    "channel_allocations",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("reserved", Integer),
    Column("shipped", Integer),
    Column("cap_units", Integer),
    Column("paused", Boolean),
    Column("updated_at", DateTime(timezone=True)),
)

#: Units of a capped SKU each buyer (an opaque key) holds or bought: the row the cap per
#: customer is guarded on.
buyer_purchases = Table(
    "buyer_purchases",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("buyer", Text, primary_key=True),
    Column("qty", Integer),
    Column("updated_at", DateTime(timezone=True)),
)
