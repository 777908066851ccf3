"""A young database's busy tables get their first statistics once; quiet tables and
tables analyzed before are left to autovacuum."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from oms_servicekit.testing import MigratedDatabase, migrated_database
from oms_servicekit.young_tables import analyze_young_tables

MIGRATIONS = Path(__file__).resolve().parents[2] / "messaging" / "tests" / "migrations"


@pytest.fixture
async def db() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, prefix="oms_youngtest") as database:
        yield database


async def table_stat(db: MigratedDatabase, table: str, column: str) -> Any:
    """One column of ``table``'s row in ``pg_stat_user_tables``."""
    async with db.engine.connect() as conn:
        return (
            await conn.execute(
                text(f"SELECT {column} FROM pg_stat_user_tables WHERE relname = :t"),
                {"t": table},
            )
        ).scalar_one()


async def analyzed(db: MigratedDatabase, table: str) -> bool:
    return await table_stat(db, table, "last_analyze") is not None


async def changes_seen(db: MigratedDatabase, table: str, at_least: int) -> None:
    """Until the server's statistics count ``at_least`` changes to ``table`` (backends
    report them at most once a second)."""
    n = 0
    for _ in range(100):
        n = int(await table_stat(db, table, "n_mod_since_analyze"))
        if n >= at_least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{table}: {n} changes counted, {at_least} expected")


async def test_a_busy_table_never_analyzed_is_analyzed_once(db: MigratedDatabase) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE busy (id int PRIMARY KEY, note text)"))
        await conn.execute(text("CREATE TABLE quiet (id int PRIMARY KEY)"))
        await conn.execute(
            text("INSERT INTO busy SELECT g, 'n' FROM generate_series(1, 1500) AS g")
        )
        await conn.execute(text("INSERT INTO quiet SELECT g FROM generate_series(1, 10) AS g"))
    await db.engine.dispose()  # a closing backend reports its counts at once
    await changes_seen(db, "busy", 1500)

    assert await analyze_young_tables(db.engine, min_changes=1000) == ["busy"]
    assert await analyzed(db, "busy")
    assert not await analyzed(db, "quiet")

    # Analyzed once: from now on its statistics are autovacuum's to keep.
    async with db.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO busy SELECT g, 'n' FROM generate_series(1501, 3000) AS g")
        )
    await db.engine.dispose()
    await changes_seen(db, "busy", 1500)
    assert await analyze_young_tables(db.engine, min_changes=1000) == []
