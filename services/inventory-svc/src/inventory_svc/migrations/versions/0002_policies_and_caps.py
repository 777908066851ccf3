"""SKU policies, per-(sku, channel) allocation counters, shipping costs, sales prices.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column(
        "warehouses",
        sa.Column("shipping_costs", JSONB, nullable=False, server_default="{}"),
    )
    op.add_column("warehouses", sa.Column("updated_at", sa.DateTime(timezone=True)))
    op.add_column("reservations", sa.Column("unit_price", sa.Numeric(18, 4)))
    op.add_column("reservations", sa.Column("closed_at", sa.DateTime(timezone=True)))
    op.create_index("reservations_sku_created_idx", "reservations", ["sku", "created_at"])
    op.create_table(
        "sku_policies",
        sa.Column("sku", sa.Text, sa.ForeignKey("skus.sku"), primary_key=True),
        sa.Column("safety_stock", sa.Integer, nullable=False, server_default="0"),
        # channel -> {"percent": "60"} or {"units": 100}
        sa.Column("channel_caps", JSONB, nullable=False, server_default="{}"),
        sa.Column("pause_channels", JSONB, nullable=False, server_default="[]"),
        sa.Column("abc_override", sa.Text),
        sa.Column("abc_class", sa.Text, nullable=False, server_default="C"),
        # Set while available is below safety stock: StockLow is raised once per crossing.
        sa.Column("low", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("safety_stock >= 0", name="policy_safety_stock_positive"),
        sa.CheckConstraint(
            "abc_override IS NULL OR abc_override IN ('A', 'B', 'C')", name="policy_abc_known"
        ),
        sa.CheckConstraint("abc_class IN ('A', 'B', 'C')", name="policy_abc_class_known"),
    )
    op.create_table(
        "channel_allocations",
        sa.Column("sku", sa.Text, sa.ForeignKey("skus.sku"), primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("shipped", sa.Integer, nullable=False, server_default="0"),
        # NULL: no cap. Kept current by every change of on hand (in the same transaction).
        sa.Column("cap_units", sa.Integer),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("reserved >= 0 AND shipped >= 0", name="channel_usage_positive"),
    )
    op.create_index("ledger_reason_idx", "ledger", ["reason"])
    op.create_index("ledger_at_idx", "ledger", ["at"])


def downgrade() -> None:
    op.drop_index("ledger_at_idx", "ledger")
    op.drop_index("ledger_reason_idx", "ledger")
    op.drop_table("channel_allocations")
    op.drop_table("sku_policies")
    op.drop_index("reservations_sku_created_idx", "reservations")
    op.drop_column("reservations", "closed_at")
    op.drop_column("reservations", "unit_price")
    op.drop_column("warehouses", "updated_at")
    op.drop_column("warehouses", "shipping_costs")
