"""Exclusive periodic jobs: two replicas never run the same job at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from oms_servicekit.jobs import run_exclusively
from oms_servicekit.testing import migrated_database

MIGRATIONS = Path(__file__).resolve().parents[2] / "messaging" / "tests" / "migrations"


@pytest.fixture
async def engines() -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one database: two replicas of a service."""
    async with migrated_database(MIGRATIONS, prefix="oms_jobtest") as db:
        other = create_async_engine(db.engine.url)
        try:
            yield db.engine, other
        finally:
            await other.dispose()


async def test_a_job_running_in_one_replica_is_skipped_by_the_other_until_it_ends(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    first, second = engines
    inside = asyncio.Event()
    finish = asyncio.Event()
    runs: list[str] = []

    async def long_work() -> None:
        runs.append("first")
        inside.set()
        await finish.wait()

    async def quick_work() -> None:
        runs.append("second")

    running = asyncio.create_task(run_exclusively(first, "purge", long_work))
    await inside.wait()
    assert await run_exclusively(second, "purge", quick_work) is False
    assert await run_exclusively(second, "another-job", quick_work) is True
    finish.set()
    assert await running is True
    assert await run_exclusively(second, "purge", quick_work) is True
    assert runs == ["first", "second", "second"]


async def test_a_failing_job_releases_its_lock(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    first, second = engines

    async def broken() -> None:
        raise RuntimeError("boom")

    async def fine() -> None:
        return None

    with pytest.raises(RuntimeError):
        await run_exclusively(first, "sweeper", broken)
    assert await run_exclusively(second, "sweeper", fine) is True
