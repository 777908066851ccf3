"""The audit trail: one append-only row per operator action on the gateway (channel
configuration, SKU maps, imports), written in the action's own transaction. Webhook
deliveries keep their own record (``deliveries``): they are not operator actions.

Revision ID: 0003
"""

from oms_servicekit.audit import create_audit_trail, drop_audit_trail

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    create_audit_trail()


def downgrade() -> None:
    drop_audit_trail()
