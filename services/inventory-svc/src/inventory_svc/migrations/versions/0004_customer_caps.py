"""Per-customer caps per SKU (flash sales): the policy's cap, each buyer's count, and
the buyer a reservation counted against (so releasing it gives the units back).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # NULL: no cap per customer.
    op.add_column("sku_policies", sa.Column("max_per_customer", sa.Integer))
    op.create_check_constraint(
        "policy_max_per_customer_positive",
        "sku_policies",
        "max_per_customer IS NULL OR max_per_customer >= 1",
    )
    # Units of a SKU each buyer holds or bought (reserved + shipped, releases given back),
    # counted only while the SKU has a cap. ``buyer`` is an opaque key, no personal data.
    # The row the cap is guarded on, like channel_allocations for the channels' caps.
    op.create_table(
        "buyer_purchases",
        sa.Column("sku", sa.Text, sa.ForeignKey("skus.sku"), primary_key=True),
        sa.Column("buyer", sa.Text, primary_key=True),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("qty >= 0", name="buyer_purchases_qty_positive"),
    )
    # The buyer whose allowance this line counts against; NULL: not counted (no cap on
    # the SKU when reserved, or an order without a buyer).
    op.add_column("reservations", sa.Column("buyer", sa.Text))


def downgrade() -> None:
    op.drop_column("reservations", "buyer")
    op.drop_table("buyer_purchases")
    op.drop_constraint("policy_max_per_customer_positive", "sku_policies", type_="check")
    op.drop_column("sku_policies", "max_per_customer")
