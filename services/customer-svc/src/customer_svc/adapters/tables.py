"""SQLAlchemy Core tables of customer-svc (the schema itself is in migrations/). The
audit trail is the shared ``oms_servicekit.audit.audit_trail``."""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("display_name", Text),
    #: E.164 phone (see domain.identity.normalize_phone).
    Column("phone_e164", Text),
    Column("email_lower", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    #: {"cold_chain": bool, "fragile": bool, "signature": bool, "window": {...} | None}
    Column("delivery_requirements", JSONB),
    Column("invoice", JSONB),
    Column("default_address", JSONB),
    Column("preferences", JSONB),
    Column("merged_into", Uuid, ForeignKey("customers.id")),
)

#: One row per (channel, platform user): how a channel knows a customer. Contact data
#: is stored normalized, so matching compares canonical forms.
identities = Table(
    "identities",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("platform_user_id", Text, primary_key=True),
    Column("customer_id", Uuid, ForeignKey("customers.id")),
    Column("name", Text),
    Column("phone", Text),
    Column("email", Text),
    Column("created_at", DateTime(timezone=True)),
)

customer_addresses = Table(
    "customer_addresses",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("address_key", Text, primary_key=True),
    Column("address", JSONB),
    Column("postal_code", Text),
    Column("created_at", DateTime(timezone=True)),
)

merge_proposals = Table(
    "merge_proposals",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_id", Uuid),
    Column("candidate_id", Uuid),
    Column("name_score", Float),
    Column("address_score", Float),
    Column("status", Text),
    Column("created_at", DateTime(timezone=True)),
)

merges = Table(
    "merges",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("surviving_id", Uuid),
    Column("merged_id", Uuid),
    Column("actor", Text),
    Column("merged_at", DateTime(timezone=True)),
    Column("moved", JSONB),
    Column("unmerged_at", DateTime(timezone=True)),
    Column("unmerged_by", Text),
)

customer_orders = Table(
    "customer_orders",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("customer_id", Uuid),
    Column("channel", Text),
    Column("total", Numeric(14, 2)),
    Column("currency", Text),
    Column("item_count", Integer),
    Column("delivery_requirements", JSONB),
    Column("status", Text),
    Column("ordered_at", DateTime(timezone=True)),
    Column("recorded_at", DateTime(timezone=True)),
)

customer_tags = Table(
    "customer_tags",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("tag", Text, primary_key=True),
    Column("source", Text),
    Column("rule", Text),
    Column("tagged_at", DateTime(timezone=True)),
)

tag_rules = Table(
    "tag_rules",
    metadata,
    Column("name", Text, primary_key=True),
    Column("tag", Text),
    Column("expression", Text),
    Column("position", Integer),
)

complaints = Table(
    "complaints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_id", Uuid),
    Column("order_id", Uuid),
    Column("category", Text),
    Column("text", Text),
    Column("created_at", DateTime(timezone=True)),
)

channel_policies = Table(
    "channel_policies",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("required_fields", JSONB),
)

#: Running totals of each customer's live orders and complaints (see domain.tagging).
customer_totals = Table(
    "customer_totals",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("order_count", Integer),
    Column("lifetime_value", Numeric(16, 2)),
    Column("last_order_at", DateTime(timezone=True)),
    Column("channels", JSONB),
    Column("complaints", Integer),
)

#: Cold-chain and fragile live orders per customer and UTC day (the windowed facts).
customer_day_tallies = Table(
    "customer_day_tallies",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("cold_chain_orders", Integer),
    Column("cold_chain_items", Integer),
    Column("fragile_orders", Integer),
    Column("fragile_items", Integer),
)
