"""No order waits forever: the watchdog's re-send counts, and a bureau answer that is
stored before anything acts on it.

- ``order_watchdog``: one row per order the watchdog has re-asked for, counting the
  re-sends of the current wait (the state and the time it was entered), so a later
  wait in the same state starts counting from zero again.
- ``credit_checks.answer`` / ``answered_at``: the bureau's answer (approved or refused)
  committed on its own (status ``answered``) before it is applied, so an answer whose
  application fails is applied again, never lost and degraded to "credit OK".
- A partial index on the outbox by key for OrderPaid rows: the watchdog asks, per
  order, when the stock was last asked for.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "order_watchdog",
        sa.Column("order_id", sa.Uuid, sa.ForeignKey("orders.id"), primary_key=True),
        # The wait being counted: the order's state and when it entered it.
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resends", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_resent_at", sa.DateTime(timezone=True)),
        sa.Column("stalled_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("resends >= 0", name="order_watchdog_resends"),
    )
    op.add_column("credit_checks", sa.Column("answer", sa.Text))
    op.add_column("credit_checks", sa.Column("answered_at", sa.DateTime(timezone=True)))
    op.create_check_constraint(
        "credit_checks_answer",
        "credit_checks",
        "answer IS NULL OR answer IN ('approved', 'refused')",
    )
    op.create_index(
        "credit_checks_answered_idx",
        "credit_checks",
        ["answered_at"],
        postgresql_where=sa.text("status = 'answered'"),
    )
    op.create_index(
        "outbox_order_paid_key_idx",
        "outbox",
        ["key"],
        postgresql_where=sa.text("event_type = 'OrderPaid'"),
    )


def downgrade() -> None:
    op.drop_index("outbox_order_paid_key_idx", table_name="outbox")
    op.drop_index("credit_checks_answered_idx", table_name="credit_checks")
    op.drop_constraint("credit_checks_answer", "credit_checks", type_="check")
    op.drop_column("credit_checks", "answered_at")
    op.drop_column("credit_checks", "answer")
    op.drop_table("order_watchdog")
