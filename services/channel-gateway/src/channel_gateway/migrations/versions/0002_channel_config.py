"""Channels as configuration, SKU maps, order state per channel order, replay nonces,
pull cursors.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("channels", sa.Column("clock_skew_s", sa.Integer))
    op.add_column(
        "channels",
        sa.Column("split_shipment", sa.Text, nullable=False, server_default="allow"),
    )
    op.add_column(
        "channels",
        sa.Column("order_class_rules", JSONB, nullable=False, server_default="[]"),
    )
    op.add_column("channels", sa.Column("rate_limit_per_min", sa.Integer))
    op.add_column("channels", sa.Column("pull", JSONB))
    op.add_column("channels", sa.Column("updated_at", sa.DateTime(timezone=True)))

    op.create_table(
        "sku_map",
        sa.Column("channel", sa.Text, sa.ForeignKey("channels.name"), primary_key=True),
        sa.Column("channel_sku", sa.Text, primary_key=True),
        sa.Column("sku", sa.Text, nullable=False),
    )

    # What the gateway knows of each channel order, to turn later updates into events.
    op.add_column("channel_orders", sa.Column("currency", sa.Text))
    op.add_column("channel_orders", sa.Column("lines", JSONB))
    op.add_column("channel_orders", sa.Column("paid_at", sa.DateTime(timezone=True)))
    op.add_column("channel_orders", sa.Column("cancelled_at", sa.DateTime(timezone=True)))

    # Replay nonces: a platform's delivery id is accepted once.
    op.create_table(
        "delivery_ids",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("delivery_id", sa.Text, primary_key=True),
        sa.Column("order_id", sa.Uuid),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.add_column("deliveries", sa.Column("delivery_id", sa.Text))
    op.add_column("deliveries", sa.Column("topic", sa.Text))

    op.create_table(
        "pull_cursors",
        sa.Column("channel", sa.Text, sa.ForeignKey("channels.name"), primary_key=True),
        sa.Column("cursor", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("pull_cursors")
    op.drop_column("deliveries", "topic")
    op.drop_column("deliveries", "delivery_id")
    op.drop_table("delivery_ids")
    for column in ("cancelled_at", "paid_at", "lines", "currency"):
        op.drop_column("channel_orders", column)
    op.drop_table("sku_map")
    for column in (
        "updated_at",
        "pull",
        "rate_limit_per_min",
        "order_class_rules",
        "split_shipment",
        "clock_skew_s",
    ):
        op.drop_column("channels", column)
