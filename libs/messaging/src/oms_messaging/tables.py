"""The outbox and inbox tables that every service database holds.

Each service's first migration calls :func:`create_messaging_tables`, so the runtime's
tables are defined once, here, and never copied into a service.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("topic", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    #: The serialized envelope, exactly the bytes that go on the wire.
    Column("payload", Text, nullable=False),
    Column("headers", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    #: Set when the relay gave up on the row for good (too large, refused by the broker):
    #: it stays for an operator, and the rows after it are published.
    Column("parked_at", DateTime(timezone=True)),
    Column("park_reason", Text),
)
Index(
    "outbox_unpublished_idx",
    outbox.c.id,
    postgresql_where=outbox.c.published_at.is_(None) & outbox.c.parked_at.is_(None),
)
#: The parked rows only, for the ``oms_outbox_parked`` gauge: without it every scrape
#: counted them by reading the whole outbox, published rows included.
Index("outbox_parked_idx", outbox.c.id, postgresql_where=outbox.c.parked_at.is_not(None))

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", Text, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def create_messaging_tables() -> None:
    """Create the outbox and inbox; call from a service's first Alembic migration."""
    from alembic import op

    bind = op.get_bind()
    metadata.create_all(bind)


def add_outbox_parking() -> None:
    """Give an existing outbox the parking columns (a later migration of every service:
    databases created before parking existed). New databases get them from
    :func:`create_messaging_tables`, so this is a no-op there."""
    from alembic import op

    op.execute("ALTER TABLE outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz")
    op.execute("ALTER TABLE outbox ADD COLUMN IF NOT EXISTS park_reason text")
    op.execute("DROP INDEX IF EXISTS outbox_unpublished_idx")
    op.execute(
        "CREATE INDEX outbox_unpublished_idx ON outbox (id)"
        " WHERE published_at IS NULL AND parked_at IS NULL"
    )


def drop_outbox_parking() -> None:
    from alembic import op

    op.execute("DROP INDEX IF EXISTS outbox_unpublished_idx")
    op.execute("ALTER TABLE outbox DROP COLUMN IF EXISTS park_reason")
    op.execute("ALTER TABLE outbox DROP COLUMN IF EXISTS parked_at")
    op.execute("CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL")


def add_outbox_parked_index() -> None:
    """Index the parked rows of an existing outbox (databases created before the index was
    part of :func:`create_messaging_tables`; a no-op on the others)."""
    from alembic import op

    op.execute(
        "CREATE INDEX IF NOT EXISTS outbox_parked_idx ON outbox (id) WHERE parked_at IS NOT NULL"
    )


def drop_outbox_parked_index() -> None:
    from alembic import op

    op.execute("DROP INDEX IF EXISTS outbox_parked_idx")


def drop_messaging_tables() -> None:
    from alembic import op

    metadata.drop_all(op.get_bind())
