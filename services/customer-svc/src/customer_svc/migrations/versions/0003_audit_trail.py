"""The shared audit trail replaces customer-svc's own audit log.

``audit_trail`` (see ``oms_servicekit.audit``) is append-only and has the same shape in
every service, so one reader and one retention rule serve all of them. The rows of the
old ``audit_log`` move into it unchanged in meaning: each was about a customer, and its
details become the row's ``after``.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from oms_servicekit.audit import create_audit_trail, drop_audit_trail

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    create_audit_trail()
    op.execute(
        """
        INSERT INTO audit_trail (at, actor, action, entity, entity_id, after)
        SELECT at, actor, action, 'customer', customer_id::text, details
        FROM audit_log
        ORDER BY id
        """
    )
    op.drop_table("audit_log")


def downgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Uuid, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("audit_log_customer_idx", "audit_log", ["customer_id"])
    # Only rows about a customer fit the old table (policies and tag rules had no audit).
    op.execute(
        """
        INSERT INTO audit_log (at, actor, action, customer_id, details)
        SELECT at, actor, action, entity_id::uuid, COALESCE(after, '{}'::jsonb)
        FROM audit_trail
        WHERE entity = 'customer'
        ORDER BY id
        """
    )
    drop_audit_trail()
