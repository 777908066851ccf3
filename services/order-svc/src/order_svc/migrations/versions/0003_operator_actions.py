"""Operator actions: shipment and cancellation details, idempotency keys of POST /orders.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    for name, type_ in (
        ("carrier", sa.Text),
        ("tracking_number", sa.Text),
        ("shipped_at", sa.DateTime(timezone=True)),
        ("delivered_at", sa.DateTime(timezone=True)),
        ("cancelled_at", sa.DateTime(timezone=True)),
        ("cancel_reason", sa.Text),
        ("refunded_at", sa.DateTime(timezone=True)),
        ("refund_reason", sa.Text),
    ):
        op.add_column("orders", sa.Column(name, type_))
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("order_id", sa.Uuid, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    for name in (
        "refund_reason",
        "refunded_at",
        "cancel_reason",
        "cancelled_at",
        "delivered_at",
        "shipped_at",
        "tracking_number",
        "carrier",
    ):
        op.drop_column("orders", name)
