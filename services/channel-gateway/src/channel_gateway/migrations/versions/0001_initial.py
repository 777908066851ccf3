"""Channels, the channel-order index that makes ingestion idempotent, delivery audit.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from oms_messaging.tables import create_messaging_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "channels",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.create_table(
        "channel_orders",
        sa.Column("channel", sa.Text, sa.ForeignKey("channels.name"), primary_key=True),
        sa.Column("channel_order_id", sa.Text, primary_key=True),
        sa.Column("order_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("order_id", sa.Uuid),
    )
    op.create_index("deliveries_channel_at_idx", "deliveries", ["channel", "received_at"])


def downgrade() -> None:
    for table in ("deliveries", "channel_orders", "channels"):
        op.drop_table(table)
