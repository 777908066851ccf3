"""Running totals of each customer's orders and complaints, and per-day tallies of
cold-chain and fragile orders: the tag rules' facts without reading a customer's whole
order history on every order. Filled from the orders already kept.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from customer_svc.adapters.order_totals import REBUILD_TALLIES, REBUILD_TOTALS

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "customer_totals",
        sa.Column("customer_id", sa.Uuid, sa.ForeignKey("customers.id"), primary_key=True),
        sa.Column("order_count", sa.Integer, nullable=False),
        sa.Column("lifetime_value", sa.Numeric(16, 2), nullable=False),
        sa.Column("last_order_at", sa.DateTime(timezone=True)),
        sa.Column("channels", JSONB, nullable=False, server_default="{}"),
        sa.Column("complaints", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "customer_day_tallies",
        sa.Column("customer_id", sa.Uuid, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("cold_chain_orders", sa.Integer, nullable=False),
        sa.Column("cold_chain_items", sa.Integer, nullable=False),
        sa.Column("fragile_orders", sa.Integer, nullable=False),
        sa.Column("fragile_items", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "day", name="customer_day_tallies_pk"),
    )
    # The latest live order after a cancellation is an index lookup, not a scan.
    op.create_index(
        "customer_orders_customer_ordered_idx", "customer_orders", ["customer_id", "ordered_at"]
    )
    bind = op.get_bind()
    bind.execute(sa.text(REBUILD_TOTALS), {"ids": None})
    bind.execute(sa.text(REBUILD_TALLIES), {"ids": None})


def downgrade() -> None:
    op.drop_index("customer_orders_customer_ordered_idx", "customer_orders")
    op.drop_table("customer_day_tallies")
    op.drop_table("customer_totals")
