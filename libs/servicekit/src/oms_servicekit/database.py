"""Database bootstrap: create the service's database if missing, engine, migrations."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from oms_servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)

_SAFE_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Serializes migrations when several replicas start at once.
_MIGRATION_LOCK = 7300


async def ensure_database(settings: ServiceSettings) -> None:
    """Create the service's database on first start (one database per service)."""
    name = settings.db_name
    if not _SAFE_DB_NAME.match(name):
        raise ValueError(f"database name {name!r} must match {_SAFE_DB_NAME.pattern}")
    conn = await asyncpg.connect(settings.server_dsn("postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
                log.info("database created", extra={"database": name})
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                pass  # another replica created it first
    finally:
        await conn.close()


#: Every statement planned for its own parameters and the tables' size at that moment.
#: asyncpg prepares and caches each statement per connection, and PostgreSQL then settles
#: on a generic plan: one made while a young service's tables were nearly empty (a
#: sequential scan looks cheapest) stays in use as they grow, so marking a batch of outbox
#: rows published read the whole outbox (20 ms a batch at 60,000 rows). Planning our few,
#: set-based statements each time costs far less.
#:
#: No JIT compilation: it pays off for long analytical queries, not for statements of a
#: few milliseconds. Before a young database's tables are first analyzed, PostgreSQL's
#: guesses push cheap statements past ``jit_above_cost``, and each execution then spent
#: tens of milliseconds compiling (348 statements in one benchmark run).
#:
#: ``random_page_cost`` 1.1, as for storage where a random read costs about what a
#: sequential one does (SSD, or a working set in memory, as a service's hot tables are).
#: With the default of 4, a batch's few hundred look-ups by primary key were priced above
#: reading the whole table, and ``UPDATE orders ... FROM unnest(...)`` read every order
#: once per batch.
_SERVER_SETTINGS = {
    "plan_cache_mode": "force_custom_plan",
    "jit": "off",
    "random_page_cost": "1.1",
}


def create_engine(settings: ServiceSettings, *, idle: int | None = None) -> AsyncEngine:
    """The service's engine: up to twice ``db_pool_size`` connections at once, of which
    ``idle`` (by default ``db_pool_size``) stay open between uses. Tests keep few idle: a
    test session holds many databases open at once, on a server's bounded connections."""
    kept = settings.db_pool_size if idle is None else min(idle, settings.db_pool_size)
    return create_async_engine(
        settings.database_sqlalchemy_url(),
        pool_size=kept,
        max_overflow=2 * settings.db_pool_size - kept,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args={"server_settings": _SERVER_SETTINGS},
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


async def run_migrations(engine: AsyncEngine, migrations_dir: Path) -> None:
    """Upgrade the database to the newest migration, one replica at a time."""

    def upgrade(connection: Connection) -> None:
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        config = Config()
        config.set_main_option("script_location", str(migrations_dir))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)
