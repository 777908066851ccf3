"""Sales history, promotions calendar, supply (lead time, on order), forecasts and
replenishment suggestions.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    # Live demand: one row per reserved order line, written with the reservation (counted
    # at payment) and flagged when the order is cancelled. Insert-only, so recording sales
    # never contends on a shared counter row of a hot SKU.
    op.create_table(
        "sales_lines",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("warehouse", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("qty > 0", name="sales_line_qty_positive"),
    )
    op.create_index("sales_lines_sku_day_idx", "sales_lines", ["sku", "day"])
    # Imported (backfilled) daily demand per (sku, warehouse, channel, day); the history
    # a forecast reads is this plus the live sales_lines.
    op.create_table(
        "sales_daily",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("warehouse", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("imported_by", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("qty >= 0", name="sales_daily_qty_positive"),
    )
    op.create_index("sales_daily_sku_day_idx", "sales_daily", ["sku", "day"])
    op.create_table(
        "promotions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        # NULL: every channel.
        sa.Column("channel", sa.Text),
        sa.Column("skus", JSONB, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=False),
        sa.Column("expected_uplift", sa.Numeric(8, 3), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("end_date >= start_date", name="promotion_dates_ordered"),
        sa.CheckConstraint("expected_uplift > 0", name="promotion_uplift_positive"),
    )
    op.create_index("promotions_end_idx", "promotions", ["end_date"])
    op.create_table(
        "sku_supply",
        sa.Column("sku", sa.Text, sa.ForeignKey("skus.sku"), primary_key=True),
        sa.Column("lead_time_days", sa.Integer, nullable=False, server_default="7"),
        # warehouse -> units ordered from the supplier and not yet received
        sa.Column("on_order", JSONB, nullable=False, server_default="{}"),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("lead_time_days BETWEEN 1 AND 365", name="supply_lead_time_in_range"),
    )
    # Cached forecasts ('' warehouse: every warehouse together).
    op.create_table(
        "forecasts",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("warehouse", sa.Text, primary_key=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("level", sa.Float, nullable=False),
        sa.Column("history_days", sa.Integer, nullable=False),
        sa.Column("history_end", sa.Date, nullable=False),
        sa.Column("uplift", sa.Float),
        sa.Column("uplift_source", sa.Text),
        sa.Column("points", JSONB, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "replenishment_suggestions",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("warehouse", sa.Text, primary_key=True),
        sa.Column("suggested_qty", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("abc_class", sa.Text, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        # The quantity last announced (ReplenishmentSuggested), to announce only changes.
        sa.Column("announced_qty", sa.Integer),
        sa.Column("announced_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("replenishment_suggestions")
    op.drop_table("forecasts")
    op.drop_table("sku_supply")
    op.drop_index("promotions_end_idx", "promotions")
    op.drop_table("promotions")
    op.drop_index("sales_daily_sku_day_idx", "sales_daily")
    op.drop_table("sales_daily")
    op.drop_index("sales_lines_sku_day_idx", "sales_lines")
    op.drop_table("sales_lines")
