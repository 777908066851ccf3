"""A confirmed order's reservations never expire: ``expires_at`` is NULL for them (only
holds of orders not yet confirmed are released by the sweeper).

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.alter_column("reservations", "expires_at", nullable=True)


def downgrade() -> None:
    op.execute(
        "UPDATE reservations SET expires_at = created_at + interval '1 day'"
        " WHERE expires_at IS NULL"
    )
    op.alter_column("reservations", "expires_at", nullable=False, type_=sa.DateTime(timezone=True))
