"""The channel's own time of the order version an order follows, so an older channel
fact (a retried or reordered webhook) never overwrites a newer one.

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.add_column("orders", sa.Column("channel_updated_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("orders", "channel_updated_at")
