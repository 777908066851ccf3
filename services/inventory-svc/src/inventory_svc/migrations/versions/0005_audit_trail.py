"""The audit trail: one append-only row per operator action (who, what, before/after,
when), written in the action's own transaction.

Revision ID: 0005
"""

from oms_servicekit.audit import create_audit_trail, drop_audit_trail

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    create_audit_trail()


def downgrade() -> None:
    drop_audit_trail()
