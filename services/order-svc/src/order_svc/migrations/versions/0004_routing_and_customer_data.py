"""Routing decisions, warehouse and stock read models, customer data on orders.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"


def _jsonb_list(name: str) -> sa.Column[list[str]]:
    return sa.Column(name, JSONB, nullable=False, server_default="[]")


def upgrade() -> None:
    # CustomerUpdated and CustomerMerged find a customer's open orders by it.
    op.create_index("orders_customer_idx", "orders", ["customer_id"])
    # Read models fed by inventory-svc's events (services never share tables).
    op.create_table(
        "routing_warehouses",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("latitude", sa.Float, nullable=False),
        sa.Column("longitude", sa.Float, nullable=False),
        _jsonb_list("capabilities"),
        sa.Column("shipping_costs", JSONB, nullable=False, server_default="{}"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "routing_stock",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("warehouse", sa.Text, primary_key=True),
        sa.Column("on_hand", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False),
        sa.Column("available", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Read models fed by customer-svc's events.
    op.create_table(
        "customer_profiles",
        sa.Column("customer_id", sa.Uuid, primary_key=True),
        _jsonb_list("delivery_requirements"),
        _jsonb_list("tags"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        #: Set when the customer was merged into another (whose profile then applies).
        sa.Column("merged_into", sa.Uuid),
    )
    op.create_table(
        "customer_identities",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("platform_user_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Uuid, nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("customer_identities_customer_idx", "customer_identities", ["customer_id"])
    # The customer's data as copied onto each order (who/when).
    op.create_table(
        "order_customer_data",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("customer_id", sa.Uuid, nullable=False),
        _jsonb_list("delivery_requirements"),
        _jsonb_list("tags"),
        #: What copied it: "receipt" (identity already known), "resolved", "updated", "merged".
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("profile_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("copied_at", sa.DateTime(timezone=True), nullable=False),
    )
    # The routing decision of each order and its scores.
    op.create_table(
        "order_routes",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        #: routed | deferred | impossible (see order_svc.domain.routing).
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        _jsonb_list("requirements"),
        _jsonb_list("shipments"),
        _jsonb_list("candidates"),
        sa.Column("split", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("allow_split", sa.Boolean, nullable=False, server_default=sa.true()),
        #: Warehouses that refused the order's pinned lines (re-routed without them).
        _jsonb_list("excluded"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        #: When the stock was held where routing said (OrderRouted emitted).
        sa.Column("routed_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    for table in (
        "order_routes",
        "order_customer_data",
        "customer_identities",
        "customer_profiles",
        "routing_stock",
        "routing_warehouses",
    ):
        op.drop_table(table)
    op.drop_index("orders_customer_idx", table_name="orders")
