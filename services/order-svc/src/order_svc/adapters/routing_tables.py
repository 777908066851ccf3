"""Tables of routing and customer data (schema in migration 0004).

Read models fed by events (warehouses, stock, customer profiles, channel identities),
the customer data copied onto each order, and each order's routing decision.
"""

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

from order_svc.adapters.tables import metadata

routing_warehouses = Table(
    "routing_warehouses",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text),
    Column("region", Text),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("capabilities", JSONB),
    Column("shipping_costs", JSONB),
    Column("updated_at", DateTime(timezone=True)),
)

routing_stock = Table(
    "routing_stock",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("warehouse", Text, primary_key=True),
    Column("on_hand", Integer),
    Column("reserved", Integer),
    Column("available", Integer),
    Column("changed_at", DateTime(timezone=True)),
)

customer_profiles = Table(
    "customer_profiles",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("delivery_requirements", JSONB),
    Column("tags", JSONB),
    Column("updated_at", DateTime(timezone=True)),
    Column("merged_into", Uuid),
)

customer_identities = Table(
    "customer_identities",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("platform_user_id", Text, primary_key=True),
    Column("customer_id", Uuid),
    Column("resolved_at", DateTime(timezone=True)),
)

order_customer_data = Table(
    "order_customer_data",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("customer_id", Uuid),
    Column("delivery_requirements", JSONB),
    Column("tags", JSONB),
    Column("source", Text),
    Column("profile_updated_at", DateTime(timezone=True)),
    Column("copied_at", DateTime(timezone=True)),
)

order_routes = Table(
    "order_routes",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("outcome", Text),
    Column("reason", Text),
    Column("requirements", JSONB),
    Column("shipments", JSONB),
    Column("candidates", JSONB),
    Column("split", Boolean),
    Column("allow_split", Boolean),
    Column("excluded", JSONB),
    Column("attempts", Integer),
    Column("decided_at", DateTime(timezone=True)),
    Column("routed_at", DateTime(timezone=True)),
)
