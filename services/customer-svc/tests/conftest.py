"""Fixtures of customer-svc's tests: a migrated throwaway database, applying events.

``throwaway_database`` and ``apply_event`` are service-independent (only the migrations
directory differs); they are meant to move to a shared test-support library.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from customer_svc.bootstrap import MIGRATIONS, SERVICE
from oms_contracts import Envelope, Event, make_envelope
from oms_messaging import Handler, UnitOfWork
from oms_messaging.tables import outbox
from oms_servicekit.database import (
    create_engine,
    create_session_factory,
    ensure_database,
    run_migrations,
)
from oms_servicekit.settings import ServiceSettings

#: The PostgreSQL server the integration tests create their databases on.
TEST_SERVER_URL = os.environ.get("OMS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")


@asynccontextmanager
async def throwaway_database(migrations_dir: Path, prefix: str) -> AsyncIterator[AsyncEngine]:
    """A uniquely named database migrated to head, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    settings = ServiceSettings(database_url=TEST_SERVER_URL, db_name=name, db_pool_size=5)
    await ensure_database(settings)
    engine = create_engine(settings)
    try:
        await run_migrations(engine, migrations_dir)
        yield engine
    finally:
        await engine.dispose()
        conn = await asyncpg.connect(settings.server_dsn("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture(scope="session")
async def engine() -> AsyncIterator[AsyncEngine]:
    async with throwaway_database(MIGRATIONS, "test_customer") as engine:
        yield engine


@pytest.fixture
async def db(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory of the test database, emptied before the test."""
    async with engine.begin() as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"
                )
            )
        ).scalars()
        await conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
    return create_session_factory(engine)


ApplyEvent = Callable[..., Awaitable[list[Envelope]]]


@pytest.fixture
def apply_event(db: async_sessionmaker[AsyncSession]) -> ApplyEvent:
    """Apply ``event`` to ``handler`` as the consumer runner does: inbox + handler + commit.

    Returns the envelopes the handler emitted ([] for a duplicate delivery).
    """

    async def apply(
        handler: Handler,
        event: Event,
        *,
        envelope: Envelope | None = None,
        consumer: str = SERVICE,
    ) -> list[Envelope]:
        envelope = envelope or make_envelope(event, producer="test")
        async with UnitOfWork(db, producer=SERVICE, causation=envelope) as uow:
            if not await uow.mark_processed(consumer, envelope.event_id, envelope.event_type):
                return []
            await handler(uow, envelope, event)
            await uow.commit()
            return uow.emitted

    return apply


async def outbox_rows(db: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    """Every outbox row, oldest first, with the envelope parsed."""
    async with db() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
    return [{**dict(r._mapping), "envelope": Envelope.model_validate_json(r.payload)} for r in rows]


@pytest.fixture
def read_outbox(db: async_sessionmaker[AsyncSession]) -> Callable[[], Awaitable[list[Any]]]:
    return lambda: outbox_rows(db)
