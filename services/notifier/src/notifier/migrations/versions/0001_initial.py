"""The event log, alerts, and the messaging tables.

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
        "events",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("producer", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.Column("causation_id", sa.Text),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("payload", JSONB, nullable=False),
    )
    op.create_index("events_type_seq_idx", "events", ["event_type", "seq"])
    op.create_index("events_key_seq_idx", "events", ["key", "seq"])
    op.create_index("events_correlation_idx", "events", ["correlation_id"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("alert_type", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="open"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "state IN ('open', 'acknowledged', 'resolved')", name="alert_state_known"
        ),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name="alert_severity_known"
        ),
    )
    op.create_index("alerts_raised_idx", "alerts", ["raised_at"])
    op.create_index(
        "alerts_open_idx", "alerts", ["raised_at"], postgresql_where=sa.text("state = 'open'")
    )
    op.create_index("alerts_subject_idx", "alerts", ["subject"])


def downgrade() -> None:
    for table in ("alerts", "events"):
        op.drop_table(table)
