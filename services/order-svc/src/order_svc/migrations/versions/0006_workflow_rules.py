"""Workflow rules as data (every version kept: the audit of who changed them), and the
hold rules an operator approved per order.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    # Append-only: the newest version is the active rule set, shared by all replicas;
    # none stored = the defaults of the deployment.
    op.create_table(
        "workflow_rule_sets",
        sa.Column("version", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("set_by", sa.Text, nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "order_workflow_approvals",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("rule", sa.Text, primary_key=True),
        sa.Column("approved_by", sa.Text, nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exception_id", sa.Uuid),
    )


def downgrade() -> None:
    op.drop_table("order_workflow_approvals")
    op.drop_table("workflow_rule_sets")
