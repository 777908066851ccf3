"""Test support shared by every service's integration tests.

A throwaway, migrated database on the real PostgreSQL, and the ways a test drives it:
units of work, applying an event exactly as the consumer runner does, reading the
outbox, and a runtime stand-in for the HTTP routes. A handler, a repository or a route
is thereby tested against the real schema (constraints, locks, the inbox) without a
broker. Nothing here imports pytest: each service's ``conftest.py`` binds these helpers
to its own migrations and service name in a few fixtures.

The PostgreSQL server is ``OMS_TEST_DATABASE_URL`` if set, else the ``DATABASE_URL`` a
service would read (default 127.0.0.1:5432), so tests can be pointed at a server other
than the one ``make run`` uses without touching the services' settings.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from oms_contracts import Envelope, Event, make_envelope
from oms_messaging import Handler, UnitOfWork
from oms_messaging.errors import is_transient
from oms_messaging.tables import outbox
from oms_servicekit.database import (
    create_engine,
    create_session_factory,
    ensure_database,
    run_migrations,
)
from oms_servicekit.settings import ServiceSettings

#: Overrides the server the test databases are created on (a libpq/SQLAlchemy URL
#: without a database name, e.g. ``postgresql://postgres@127.0.0.1:5432``).
TEST_DATABASE_URL_ENV = "OMS_TEST_DATABASE_URL"

#: How long :func:`wait_for_lock_waiter` waits for a concurrent transaction to block.
LOCK_WAIT_TIMEOUT_S = 10.0

#: Alembic's bookkeeping: emptying it would make the next migration run start over.
_KEEP_TABLES = frozenset({"alembic_version"})


def database_settings(db_name: str, *, pool_size: int = 10) -> ServiceSettings:
    """Settings for the test database ``db_name`` on the test server."""
    overrides: dict[str, Any] = {"db_name": db_name, "db_pool_size": pool_size}
    server = os.environ.get(TEST_DATABASE_URL_ENV)
    if server:
        overrides["database_url"] = server
    return ServiceSettings(**overrides)


@dataclass
class MigratedDatabase:
    """A migrated test database: its settings, engine and session factory.

    ``producer`` names the service whose units of work these are, so events emitted
    through :meth:`uow` carry the producer the service itself would write.
    """

    settings: ServiceSettings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    producer: str = "test"

    def uow(self, causation: Envelope | None = None) -> UnitOfWork:
        """A unit of work on this database, as ``ServiceRuntime.uow`` makes one."""
        return UnitOfWork(self.session_factory, producer=self.producer, causation=causation)

    async def truncate(self) -> None:
        """Empty every table; see :func:`truncate_all`."""
        await truncate_all(self.engine)

    async def apply_event(
        self,
        handler: Handler,
        event: Event,
        *,
        consumer: str,
        envelope: Envelope | None = None,
    ) -> list[Envelope]:
        """Apply ``event`` as consumer ``consumer``; see :func:`apply_event`."""
        return await apply_event(
            self, handler, event, consumer=consumer, producer=self.producer, envelope=envelope
        )

    async def outbox_rows(self) -> list[dict[str, Any]]:
        """Every outbox row; see :func:`outbox_rows`."""
        return await outbox_rows(self)

    async def wait_for_lock_waiter(self) -> None:
        """Until a session waits for a lock; see :func:`wait_for_lock_waiter`."""
        await wait_for_lock_waiter(self.engine)


SessionSource = async_sessionmaker[AsyncSession] | MigratedDatabase
"""Where a helper gets its sessions: a session factory, or a :class:`MigratedDatabase`."""


def _session_factory(source: SessionSource) -> async_sessionmaker[AsyncSession]:
    return source.session_factory if isinstance(source, MigratedDatabase) else source


@asynccontextmanager
async def migrated_database(
    migrations_dir: Path,
    prefix: str = "oms_test",
    *,
    producer: str = "test",
    pool_size: int = 10,
) -> AsyncIterator[MigratedDatabase]:
    """Create a uniquely named database, migrate it to head, yield it, drop it.

    A fresh database per test session (not a shared one) so concurrent test runs and
    a running stack never see each other's rows, and so the migrations themselves are
    exercised. ``pool_size`` bounds how many units of work can hold a connection at
    once (the engine allows as many again in overflow); concurrency tests need enough.
    """
    settings = database_settings(f"{prefix}_{uuid.uuid4().hex[:10]}", pool_size=pool_size)
    await ensure_database(settings)
    engine = create_engine(settings)
    try:
        await run_migrations(engine, migrations_dir)
        yield MigratedDatabase(settings, engine, create_session_factory(engine), producer)
    finally:
        await engine.dispose()
        conn = await asyncpg.connect(settings.server_dsn("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{settings.db_name}" WITH (FORCE)')
        finally:
            await conn.close()


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table of the database except ``alembic_version``.

    Truncating is much cheaper than a new database per test, and lets a test start from
    nothing whatever the one before it left; the schema (and its version) stays.
    """
    async with engine.begin() as conn:
        tables = [
            name
            for name in (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
            if name not in _KEEP_TABLES
        ]
        if tables:
            quoted = ", ".join(f'"{name}"' for name in tables)
            # The audit trail refuses TRUNCATE by trigger; tests (as the superuser) start
            # from nothing anyway, with triggers off for this transaction only.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


async def apply_event(
    source: SessionSource,
    handler: Handler,
    event: Event,
    *,
    consumer: str,
    producer: str,
    envelope: Envelope | None = None,
) -> list[Envelope]:
    """Apply ``event`` to ``handler`` as the consumer runner does, minus Kafka.

    In one unit of work: record the event id in ``consumer``'s inbox, run the handler,
    commit. So a test sees exactly what a delivery would do, including that a
    redelivery (the same ``envelope`` again) changes nothing. ``producer`` is the
    service the handler belongs to (what its emitted events say produced them); the
    envelope defaults to a new one of ``event`` from producer ``"test"``.

    Returns the envelopes the handler emitted ([] for a duplicate delivery). Like the
    runner, a transient failure (deadlock, serialization failure, lost connection) rolls
    the delivery back and applies it again; any other exception propagates and nothing
    of the delivery is kept.
    """
    envelope = envelope or make_envelope(event, producer="test")
    for attempt in range(1, 11):
        try:
            async with UnitOfWork(
                _session_factory(source), producer=producer, causation=envelope
            ) as uow:
                if not await uow.mark_processed(consumer, envelope.event_id, envelope.event_type):
                    return []
                await handler(uow, envelope, event)
                await uow.commit()
                return uow.emitted
        except Exception as exc:
            if not is_transient(exc) or attempt == 10:
                raise
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


async def outbox_rows(source: SessionSource) -> list[dict[str, Any]]:
    """Every outbox row, oldest first, with ``envelope`` holding the parsed payload.

    The outbox is what the service would publish: asserting on it (rather than on the
    handler's return value) checks the topic and key the relay will use, too.
    """
    async with _session_factory(source)() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
    return [
        {**dict(row._mapping), "envelope": Envelope.model_validate_json(row.payload)}
        for row in rows
    ]


async def wait_for_lock_waiter(engine: AsyncEngine) -> None:
    """Return once some session of ``engine``'s database is waiting for a lock.

    Makes a race deterministic: a test holding a transaction open commits only when
    the concurrent transaction it races is known to be blocked on it, instead of
    hoping a sleep was long enough. Gives up with TimeoutError after
    ``LOCK_WAIT_TIMEOUT_S`` (a race that never happens is a failure, not a hang);
    wrap the call in ``asyncio.timeout`` for a shorter bound.
    """
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(LOCK_WAIT_TIMEOUT_S):
        while True:
            async with engine.connect() as conn:
                if await conn.scalar(query):
                    return
            await asyncio.sleep(0.02)


class DatabaseOnlyRuntime:
    """A stand-in for ``ServiceRuntime`` with a database and no broker, for HTTP tests.

    Routes only use the runtime for units of work, so an app built with this one
    serves real requests on the test database; events stay in the outbox, where a test
    can read them. Starting and stopping do nothing: the database belongs to the test.
    """

    def __init__(self, source: SessionSource, *, producer: str) -> None:
        self._session_factory = _session_factory(source)
        self.service_name = producer

    def uow(self, causation: Envelope | None = None) -> UnitOfWork:
        return UnitOfWork(self._session_factory, producer=self.service_name, causation=causation)

    async def start(self) -> None:
        """Nothing to start: the test created and migrated the database."""

    async def stop(self) -> None:
        """Nothing to stop: the test drops the database."""

    async def check_ready(self) -> dict[str, bool]:
        """Ready when the database answers; there is no broker to ask."""
        try:
            async with self._session_factory() as session:
                await session.execute(text("SELECT 1"))
        except Exception:
            return {"database": False}
        return {"database": True}
