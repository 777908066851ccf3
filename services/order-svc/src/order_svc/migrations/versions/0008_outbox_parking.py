"""The outbox parks what it can never publish (too large, refused by the broker) instead
of stopping on it: the parking columns, and the relay's index without parked rows.

Revision ID: 0008
"""

from oms_messaging.tables import add_outbox_parking, drop_outbox_parking

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    add_outbox_parking()


def downgrade() -> None:
    drop_outbox_parking()
