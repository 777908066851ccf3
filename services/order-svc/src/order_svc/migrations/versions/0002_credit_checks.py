"""Credit checks: one row per order, claimed by the credit worker outside the consumer.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column("credit_degraded", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "credit_checks",
        sa.Column("order_id", sa.Uuid, sa.ForeignKey("orders.id"), primary_key=True),
        # pending -> in_flight -> (awaiting_callback ->) approved | refused | degraded;
        # skipped when no bureau is configured.
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("request", JSONB, nullable=False, server_default="{}"),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("claims", sa.Integer, nullable=False, server_default="0"),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("degraded_reason", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("external_ref", sa.Text),
        sa.Column("callback_at", sa.DateTime(timezone=True)),
        sa.Column("callback_decision", sa.Text),
        sa.Column("callback_late", sa.Boolean),
    )
    op.create_index(
        "credit_checks_open_idx",
        "credit_checks",
        ["status", "deadline_at"],
        postgresql_where=sa.text("status IN ('pending', 'in_flight', 'awaiting_callback')"),
    )


def downgrade() -> None:
    op.drop_table("credit_checks")
    op.drop_column("orders", "credit_degraded")
