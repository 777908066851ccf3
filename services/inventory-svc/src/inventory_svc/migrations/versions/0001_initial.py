"""Stock pool, reservations, ledger, and the messaging tables.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from oms_messaging.tables import create_messaging_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "warehouses",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("latitude", sa.Float, nullable=False),
        sa.Column("longitude", sa.Float, nullable=False),
        sa.Column("capabilities", JSONB, nullable=False, server_default="[]"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.create_table(
        "skus",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("attributes", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.create_table(
        "stock",
        sa.Column("sku", sa.Text, sa.ForeignKey("skus.sku"), primary_key=True),
        sa.Column("warehouse", sa.Text, sa.ForeignKey("warehouses.code"), primary_key=True),
        sa.Column("on_hand", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        # Whatever the code does, available (on_hand - reserved) can never go negative.
        sa.CheckConstraint(
            "on_hand >= 0 AND reserved >= 0 AND reserved <= on_hand", name="stock_never_oversold"
        ),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("warehouse", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("qty > 0", name="reservation_qty_positive"),
        sa.CheckConstraint(
            "state IN ('reserved', 'released', 'shipped')", name="reservation_state_known"
        ),
    )
    op.create_index(
        "reservations_open_idx",
        "reservations",
        ["expires_at"],
        postgresql_where=sa.text("state = 'reserved'"),
    )
    op.create_table(
        "ledger",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("warehouse", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("operator", sa.Text, nullable=False),
        sa.Column("order_id", sa.Uuid),
        sa.Column("delta_on_hand", sa.Integer, nullable=False),
        sa.Column("delta_reserved", sa.Integer, nullable=False),
        sa.Column("on_hand_after", sa.Integer, nullable=False),
        sa.Column("reserved_after", sa.Integer, nullable=False),
    )
    op.create_index("ledger_sku_wh_at_idx", "ledger", ["sku", "warehouse", "at"])


def downgrade() -> None:
    for table in ("ledger", "reservations", "stock", "skus", "warehouses"):
        op.drop_table(table)
