"""Customer profiles: addresses, requirements, merges (audited), orders, tags, complaints.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"


def _now() -> sa.Column[sa.DateTime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("delivery_requirements", JSONB, nullable=False, server_default="{}"),
    )
    op.add_column("customers", sa.Column("invoice", JSONB))
    op.add_column("customers", sa.Column("default_address", JSONB))
    op.add_column("customers", sa.Column("preferences", JSONB, nullable=False, server_default="{}"))
    #: Set while the customer is merged into another (the survivor).
    op.add_column("customers", sa.Column("merged_into", sa.Uuid, sa.ForeignKey("customers.id")))

    op.create_table(
        "customer_addresses",
        sa.Column("customer_id", sa.Uuid, sa.ForeignKey("customers.id"), nullable=False),
        #: The normalized one-line address, the identity of the row.
        sa.Column("address_key", sa.Text, nullable=False),
        sa.Column("address", JSONB, nullable=False),
        sa.Column("postal_code", sa.Text),
        _now(),
        sa.PrimaryKeyConstraint("customer_id", "address_key", name="customer_addresses_pk"),
    )
    op.create_index("customer_addresses_postal_idx", "customer_addresses", ["postal_code"])

    op.create_table(
        "merge_proposals",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("customer_id", sa.Uuid, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("candidate_id", sa.Uuid, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("name_score", sa.Float, nullable=False),
        sa.Column("address_score", sa.Float, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        _now(),
    )

    op.create_table(
        "merges",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("surviving_id", sa.Uuid, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("merged_id", sa.Uuid, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        #: What moved to the survivor, so that an unmerge moves exactly that back.
        sa.Column("moved", JSONB, nullable=False),
        sa.Column("unmerged_at", sa.DateTime(timezone=True)),
        sa.Column("unmerged_by", sa.Text),
    )
    op.create_index(
        "merges_active_merged_idx",
        "merges",
        ["merged_id"],
        unique=True,
        postgresql_where=sa.text("unmerged_at IS NULL"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Uuid, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("audit_log_customer_idx", "audit_log", ["customer_id"])

    op.create_table(
        "customer_orders",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("customer_id", sa.Uuid, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("total", sa.Numeric(14, 2), nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("delivery_requirements", JSONB, nullable=False, server_default="[]"),
        sa.Column("status", sa.Text, nullable=False, server_default="created"),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        #: When customer-svc learnt of the order (what "placed since a merge" compares).
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("customer_orders_customer_idx", "customer_orders", ["customer_id"])

    op.create_table(
        "customer_tags",
        sa.Column("customer_id", sa.Uuid, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("rule", sa.Text),
        sa.Column("tagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "tag", name="customer_tags_pk"),
        sa.CheckConstraint("source IN ('rule', 'operator')", name="customer_tags_source_ck"),
    )

    op.create_table(
        "tag_rules",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("expression", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )

    op.create_table(
        "complaints",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("customer_id", sa.Uuid, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("order_id", sa.Uuid),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        _now(),
    )
    op.create_index("complaints_customer_idx", "complaints", ["customer_id"])

    op.create_table(
        "channel_policies",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("required_fields", JSONB, nullable=False, server_default="[]"),
    )


def downgrade() -> None:
    for table in (
        "channel_policies",
        "complaints",
        "tag_rules",
        "customer_tags",
        "customer_orders",
        "audit_log",
        "merges",
        "merge_proposals",
        "customer_addresses",
    ):
        op.drop_table(table)
    for column in ("merged_into", "preferences", "default_address", "invoice"):
        op.drop_column("customers", column)
    op.drop_column("customers", "delivery_requirements")
