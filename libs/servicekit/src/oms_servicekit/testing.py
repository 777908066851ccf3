"""Test support shared by every service's integration tests.

A throwaway, migrated database on the real PostgreSQL and a unit of work on it, so a
handler or repository is tested against the real schema without a broker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from oms_contracts import Envelope
from oms_messaging import UnitOfWork
from oms_servicekit.database import (
    create_engine,
    create_session_factory,
    ensure_database,
    run_migrations,
)
from oms_servicekit.settings import ServiceSettings


@dataclass
class MigratedDatabase:
    settings: ServiceSettings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]

    def uow(self, causation: Envelope | None = None) -> UnitOfWork:
        return UnitOfWork(self.session_factory, producer="test", causation=causation)


@asynccontextmanager
async def migrated_database(
    migrations_dir: Path, prefix: str = "oms_test"
) -> AsyncIterator[MigratedDatabase]:
    """Create a uniquely named database, migrate it, yield it, drop it."""
    settings = ServiceSettings(db_name=f"{prefix}_{uuid.uuid4().hex[:10]}")
    await ensure_database(settings)
    engine = create_engine(settings)
    try:
        await run_migrations(engine, migrations_dir)
        yield MigratedDatabase(settings, engine, create_session_factory(engine))
    finally:
        await engine.dispose()
        conn = await asyncpg.connect(settings.server_dsn("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{settings.db_name}" WITH (FORCE)')
        finally:
            await conn.close()
