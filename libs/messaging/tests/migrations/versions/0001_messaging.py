"""Only the runtime's own tables (outbox, inbox), for the runtime's tests.

Revision ID: 0001
"""

from oms_messaging.tables import create_messaging_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_messaging_tables()
