"""The retention purge: old rows go, recent ones and unpublished events stay, and a
retention below the 3-month floor or an unknown column is refused with nothing deleted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from oms_messaging.tables import inbox, outbox
from oms_servicekit import purge as purge_cli
from oms_servicekit.purge import (
    PurgeRefused,
    PurgeTarget,
    RetentionSettings,
    cutoff_for,
    purge,
)
from oms_servicekit.testing import MigratedDatabase, migrated_database

MIGRATIONS = Path(__file__).resolve().parents[2] / "messaging" / "tests" / "migrations"
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=200)
RECENT = NOW - timedelta(days=10)


@pytest.fixture
async def db() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, prefix="oms_purgetest") as database:
        async with database.engine.begin() as conn:
            for at in (OLD, OLD, RECENT):
                await conn.execute(
                    insert(inbox).values(
                        consumer="c", event_id=uuid.uuid4(), event_type="T", processed_at=at
                    )
                )
            for published_at in (OLD, None, RECENT):
                await conn.execute(
                    insert(outbox).values(
                        event_id=uuid.uuid4(),
                        topic="t",
                        key="k",
                        event_type="T",
                        payload="{}",
                        headers={},
                        published_at=published_at,
                    )
                )
        yield database


async def counts(db: MigratedDatabase) -> tuple[int, int]:
    async with db.engine.connect() as conn:
        n_inbox = await conn.scalar(select(func.count()).select_from(inbox))
        n_outbox = await conn.scalar(select(func.count()).select_from(outbox))
    return int(n_inbox or 0), int(n_outbox or 0)


async def test_rows_past_retention_are_purged_and_unpublished_events_kept(
    db: MigratedDatabase,
) -> None:
    cutoff = cutoff_for(RetentionSettings(retention_days=92), NOW)
    targets = [PurgeTarget.parse("inbox:processed_at"), PurgeTarget.parse("outbox:published_at")]
    deleted = await purge(db.engine, targets, cutoff, batch_size=1)
    assert deleted == {"inbox": 2, "outbox": 1}
    assert await counts(db) == (1, 2)
    async with db.engine.connect() as conn:
        kept = (await conn.execute(select(outbox.c.published_at))).scalars().all()
    assert None in kept  # never published: never purged


async def test_an_unknown_column_is_refused_before_anything_is_deleted(
    db: MigratedDatabase,
) -> None:
    targets = [PurgeTarget.parse("inbox:processed_at"), PurgeTarget.parse("outbox:no_such")]
    with pytest.raises(PurgeRefused):
        await purge(db.engine, targets, NOW, batch_size=100)
    assert await counts(db) == (3, 3)


def test_retention_below_the_floor_and_bad_targets_are_refused() -> None:
    with pytest.raises(PurgeRefused):
        cutoff_for(RetentionSettings(retention_days=30, retention_min_days=92), NOW)
    for spec in ("inbox", "inbox;drop table x:at", "inbox:processed_at;--"):
        with pytest.raises(ValueError):
            PurgeTarget.parse(spec)


async def test_the_command_refuses_a_short_retention_with_exit_code_2(
    db: MigratedDatabase, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMS_RETENTION_DAYS", "7")
    assert await purge_cli._main(["inbox:processed_at"]) == 2
    assert "below the minimum" in capsys.readouterr().err
    assert await counts(db) == (3, 3)
