"""The event log is the consumer's inbox; its unused correlation index goes.

Each event used to cost an event-log row and an inbox row; the log's key on the event id
now does the inbox's job (``EventLogInbox``), so the inbox table stays for what it held
(kept for the retention purge) and gets no new rows. No query reads the log by
correlation id (the API filters by type and by key), and that index was a random
insert per event on the busiest table of the day.

Revision ID: 0007
"""

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.drop_index("events_correlation_idx", table_name="events")


def downgrade() -> None:
    op.create_index("events_correlation_idx", "events", ["correlation_id"])
