"""What the gateway last heard of each channel order, so a later delivery can say what
changed (lines, address) and an older one can be told apart from a newer (the channel's
own timestamp).

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("channel_orders", sa.Column("shipping_address", JSONB))
    op.add_column("channel_orders", sa.Column("channel_updated_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("channel_orders", "channel_updated_at")
    op.drop_column("channel_orders", "shipping_address")
