"""SQLAlchemy Core tables of customer-svc (the schema itself is in migrations/)."""

from sqlalchemy import Column, DateTime, ForeignKey, MetaData, Table, Text, Uuid

metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("display_name", Text),
    #: Canonical phone (see domain.identity.normalize_phone); full E.164 comes later.
    Column("phone_e164", Text),
    Column("email_lower", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
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
