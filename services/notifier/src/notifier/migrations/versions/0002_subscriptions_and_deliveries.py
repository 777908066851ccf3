"""Subscriptions, deliveries with retries, alert dedupe and digests.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # -- alerts: what a subscription matches on, the dedupe key, who acknowledged --------
    op.add_column("alerts", sa.Column("event_type", sa.Text))
    op.add_column("alerts", sa.Column("dedupe_key", sa.Text))
    op.add_column("alerts", sa.Column("channel", sa.Text))
    op.add_column("alerts", sa.Column("warehouse", sa.Text))
    op.add_column("alerts", sa.Column("acknowledged_by", sa.Text))
    op.add_column("alerts", sa.Column("acknowledged_at", sa.DateTime(timezone=True)))
    op.add_column("alerts", sa.Column("resolved_by", sa.Text))
    op.add_column("alerts", sa.Column("resolved_at", sa.DateTime(timezone=True)))
    # One live alert per cause and subject: a second raise of the same cause is a no-op
    # until the first is resolved.
    op.create_index(
        "alerts_live_dedupe_key",
        "alerts",
        ["dedupe_key"],
        unique=True,
        postgresql_where=sa.text("state <> 'resolved' AND dedupe_key IS NOT NULL"),
    )
    op.create_index("alerts_type_raised_idx", "alerts", ["alert_type", "raised_at"])
    op.create_index("alerts_event_type_raised_idx", "alerts", ["event_type", "raised_at"])

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("event_types", ARRAY(sa.Text), nullable=False),
        sa.Column("channel", sa.Text),
        sa.Column("warehouse", sa.Text),
        sa.Column("target_type", sa.Text, nullable=False),
        #: The URL or the e-mail address (NULL for the board).
        sa.Column("target", sa.Text),
        #: HMAC key of webhook deliveries (NULL for other targets).
        sa.Column("secret", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("deleted_by", sa.Text),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "target_type IN ('webhook', 'email', 'board')", name="subscription_target_known"
        ),
        sa.CheckConstraint(
            "(target_type = 'board') = (target IS NULL)", name="subscription_target_present"
        ),
        sa.CheckConstraint("cardinality(event_types) > 0", name="subscription_has_event_types"),
    )
    op.create_index(
        "subscriptions_active_idx",
        "subscriptions",
        ["event_types"],
        postgresql_using="gin",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )

    # -- digests: a flood of one alert type for one subscription, one per minute --------
    op.create_table(
        "alert_windows",
        sa.Column("subscription_id", sa.Uuid, sa.ForeignKey("subscriptions.id"), nullable=False),
        sa.Column("alert_type", sa.Text, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alerts", sa.Integer, nullable=False),
        sa.Column("digest_id", sa.Uuid),
        sa.PrimaryKeyConstraint("subscription_id", "alert_type", "window_start"),
    )
    op.create_table(
        "digests",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("subscription_id", sa.Uuid, sa.ForeignKey("subscriptions.id"), nullable=False),
        sa.Column("alert_type", sa.Text, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("subscription_id", "alert_type", "window_start"),
    )
    op.create_table(
        "digest_alerts",
        sa.Column(
            "digest_id", sa.Uuid, sa.ForeignKey("digests.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("alert_id", sa.Uuid, sa.ForeignKey("alerts.id"), nullable=False),
        sa.PrimaryKeyConstraint("digest_id", "alert_id"),
    )
    op.create_index("digest_alerts_alert_idx", "digest_alerts", ["alert_id"])

    # -- deliveries: one row per (alert or digest) x subscription, retried until due ----
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("subscription_id", sa.Uuid, sa.ForeignKey("subscriptions.id"), nullable=False),
        sa.Column("alert_id", sa.Uuid, sa.ForeignKey("alerts.id")),
        sa.Column("digest_id", sa.Uuid, sa.ForeignKey("digests.id")),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        #: After this, a failed attempt is the last one (state failed).
        sa.Column("give_up_at", sa.DateTime(timezone=True), nullable=False),
        #: An in-flight claim older than this was lost (a crashed worker): claim it again.
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'in_flight', 'delivered', 'failed', 'cancelled')",
            name="delivery_state_known",
        ),
        sa.CheckConstraint(
            "(alert_id IS NULL) <> (digest_id IS NULL)", name="delivery_of_alert_or_digest"
        ),
    )
    op.create_index(
        "deliveries_due_idx",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("state IN ('pending', 'in_flight')"),
    )
    op.create_index("deliveries_alert_idx", "deliveries", ["alert_id"])
    op.create_index("deliveries_digest_idx", "deliveries", ["digest_id"])
    op.create_index("deliveries_subscription_idx", "deliveries", ["subscription_id"])

    # -- who did what: subscription changes and acknowledgements ------------------------
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("detail", JSONB, nullable=False, server_default="{}"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("audit_log_entity_idx", "audit_log", ["entity", "entity_id"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "deliveries",
        "digest_alerts",
        "digests",
        "alert_windows",
        "subscriptions",
    ):
        op.drop_table(table)
    op.drop_index("alerts_event_type_raised_idx", table_name="alerts")
    op.drop_index("alerts_type_raised_idx", table_name="alerts")
    op.drop_index("alerts_live_dedupe_key", table_name="alerts")
    for column in (
        "resolved_at",
        "resolved_by",
        "acknowledged_at",
        "acknowledged_by",
        "warehouse",
        "channel",
        "dedupe_key",
        "event_type",
    ):
        op.drop_column("alerts", column)
