"""The shared audit trail replaces notifier's own audit log.

``audit_trail`` (see ``oms_servicekit.audit``) is append-only and has the same shape in
every service, so one reader and one retention rule serve all of them. The rows of the
old ``audit_log`` (acknowledgements, subscription changes) move into it; their detail
becomes the row's ``after``.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from oms_servicekit.audit import create_audit_trail, drop_audit_trail

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    create_audit_trail()
    op.execute(
        """
        INSERT INTO audit_trail (at, actor, action, entity, entity_id, after)
        SELECT at, actor, action, entity, entity_id, detail
        FROM audit_log
        ORDER BY id
        """
    )
    op.drop_table("audit_log")


def downgrade() -> None:
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
    op.execute(
        """
        INSERT INTO audit_log (at, actor, action, entity, entity_id, detail)
        SELECT at, actor, action, entity, entity_id, COALESCE(after, '{}'::jsonb)
        FROM audit_trail
        ORDER BY id
        """
    )
    drop_audit_trail()
