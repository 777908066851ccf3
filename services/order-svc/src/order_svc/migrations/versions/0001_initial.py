"""Orders, their lines and their full transition history.

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
        "orders",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("channel_order_id", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Uuid),
        sa.Column("customer", JSONB, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("total", sa.Numeric(16, 2), nullable=False),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("shipping_address", JSONB, nullable=False),
        sa.Column("delivery_requirements", JSONB, nullable=False, server_default="[]"),
        sa.Column("notes", sa.Text),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
        sa.Column("exception_reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("channel", "channel_order_id", name="orders_channel_order_uq"),
    )
    op.create_index("orders_state_idx", "orders", ["state", "created_at"])
    op.create_index("orders_channel_idx", "orders", ["channel", "created_at"])
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.Uuid, sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.Numeric(14, 2), nullable=False),
        sa.Column("warehouse", sa.Text),
    )
    op.create_table(
        "order_transitions",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("order_id", sa.Uuid, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("from_state", sa.Text),
        sa.Column("to_state", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("order_transitions_order_idx", "order_transitions", ["order_id", "id"])


def downgrade() -> None:
    for table in ("order_transitions", "order_lines", "orders"):
        op.drop_table(table)
