"""SLA deadlines and stage timings, the exception queue.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # One clock per order and stage; no foreign key to orders because the first
    # transition (received) is tracked in the same transaction, before the order row.
    op.create_table(
        "order_sla",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("stage", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("order_class", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at_risk_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("ended_state", sa.Text),
        sa.Column("at_risk_sent_at", sa.DateTime(timezone=True)),
        sa.Column("breached_sent_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("deadline_at >= started_at", name="order_sla_deadline_after_start"),
    )
    # What the scheduler scans: open clocks not yet breached, by when they need a look.
    op.create_index(
        "order_sla_due",
        "order_sla",
        ["at_risk_at"],
        postgresql_where=sa.text("ended_at IS NULL AND breached_sent_at IS NULL"),
    )
    # The board's list: open clocks by deadline.
    op.create_index(
        "order_sla_open",
        "order_sla",
        ["deadline_at", "order_id"],
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_index("order_sla_started", "order_sla", ["started_at"])

    op.create_table(
        "order_exceptions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("order_id", sa.Uuid, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_by", sa.Text),
        sa.Column("action", sa.Text),
        sa.Column("note", sa.Text),
        sa.CheckConstraint("state IN ('open', 'resolved')", name="order_exceptions_state"),
        sa.CheckConstraint(
            "(state = 'open') = (resolved_at IS NULL)", name="order_exceptions_resolved_at"
        ),
    )
    # At most one open exception per order and cause: raising it again changes nothing.
    op.create_index(
        "order_exceptions_open_cause",
        "order_exceptions",
        ["order_id", "cause"],
        unique=True,
        postgresql_where=sa.text("state = 'open'"),
    )
    op.create_index("order_exceptions_queue", "order_exceptions", ["state", "cause", "opened_at"])
    op.create_index("order_exceptions_order", "order_exceptions", ["order_id"])


def downgrade() -> None:
    op.drop_table("order_exceptions")
    op.drop_table("order_sla")
