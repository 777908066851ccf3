"""An index on the outbox's parked rows: the metrics scrape counts them, and without it
each scrape read the whole outbox (published rows are kept).

Revision ID: 0007
"""

from oms_messaging.tables import add_outbox_parked_index, drop_outbox_parked_index

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    add_outbox_parked_index()


def downgrade() -> None:
    drop_outbox_parked_index()
