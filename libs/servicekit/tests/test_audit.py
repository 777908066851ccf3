"""The shared audit trail: rows commit with the change they describe, nobody connected as
the service can rewrite or remove recent ones, the retention purge can remove old ones,
and ``GET /audit`` shows them newest first to callers holding the role only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from oms_servicekit.audit import CREATE_AUDIT_TRAIL, audit_router, audit_trail, record_audit
from oms_servicekit.auth import Authenticator, AuthSettings
from oms_servicekit.problems import install_problem_handlers
from oms_servicekit.purge import PurgeTarget, purge
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase, migrated_database

MIGRATIONS = Path(__file__).resolve().parents[2] / "messaging" / "tests" / "migrations"
NOW = datetime.now(UTC)


def iso_z(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@pytest.fixture
async def db() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, prefix="oms_audittest") as database:
        async with database.engine.begin() as conn:
            for statement in CREATE_AUDIT_TRAIL:
                await conn.execute(text(statement))
        yield database


async def audit_rows(db: MigratedDatabase) -> list[dict[str, object]]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(audit_trail).order_by(audit_trail.c.id))).mappings()
        return [dict(r) for r in rows]


async def add_row(db: MigratedDatabase, entity_id: str, at: datetime = NOW) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(audit_trail).values(
                at=at, actor="alice", action="adjust", entity="stock", entity_id=entity_id
            )
        )


async def test_a_row_commits_with_its_transaction_and_vanishes_with_a_rollback(
    db: MigratedDatabase,
) -> None:
    async with AsyncSession(db.engine) as session, session.begin():
        await record_audit(
            session,
            actor="alice",
            action="adjust",
            entity="stock",
            entity_id="SKU-1@WH-1",
            before={"on_hand": 5},
            after={"on_hand": 7, "value": Decimal("1.50"), "at": NOW},
        )
    async with AsyncSession(db.engine) as session, session.begin():
        await record_audit(session, actor="bob", action="x", entity="e", entity_id="1")
        await session.rollback()
    rows = await audit_rows(db)
    assert [(r["actor"], r["before"], r["after"]) for r in rows] == [
        (
            "alice",
            {"on_hand": 5},
            {"on_hand": 7, "value": "1.50", "at": NOW.isoformat().replace("+00:00", "Z")},
        )
    ]
    assert rows[0]["at"] is not None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_trail SET actor = 'mallory'",
        "DELETE FROM audit_trail",
        "TRUNCATE audit_trail",
    ],
)
async def test_the_service_cannot_rewrite_or_remove_recent_rows(
    db: MigratedDatabase, statement: str
) -> None:
    await add_row(db, "1")
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.engine.begin() as conn:
            await conn.execute(text(statement))
    assert [(r["actor"], r["entity_id"]) for r in await audit_rows(db)] == [("alice", "1")]


async def test_rows_past_the_floor_can_be_purged_and_recent_ones_stay(
    db: MigratedDatabase,
) -> None:
    await add_row(db, "old", at=NOW - timedelta(days=200))
    await add_row(db, "recent", at=NOW - timedelta(days=10))
    deleted = await purge(
        db.engine, [PurgeTarget.parse("audit_trail:at")], NOW - timedelta(days=92), batch_size=10
    )
    assert deleted == {"audit_trail": 1}
    assert [r["entity_id"] for r in await audit_rows(db)] == ["recent"]
    # Even a purge told to cut younger rows cannot: the database refuses.
    with pytest.raises(DBAPIError, match="append-only"):
        await purge(db.engine, [PurgeTarget.parse("audit_trail:at")], NOW, batch_size=10)
    async with db.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(audit_trail)) == 1
    with pytest.raises(DBAPIError):
        async with db.engine.begin() as conn:
            await conn.execute(update(audit_trail).values(after={"forged": True}))


def audit_app(db: MigratedDatabase) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.runtime = DatabaseOnlyRuntime(db, producer="test")
    app.state.authenticator = Authenticator(AuthSettings(auth_mode="dev"))
    app.include_router(audit_router("inventory:adjust"))
    return app


async def test_the_trail_is_read_newest_first_in_pages(db: MigratedDatabase) -> None:
    for n in range(5):
        await add_row(db, str(n))
    transport = httpx.ASGITransport(app=audit_app(db))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get("/audit", params={"limit": 3}, headers={"X-Operator": "ann"})
        assert first.status_code == 200
        assert [e["entity_id"] for e in first.json()["items"]] == ["4", "3", "2"]
        cursor = first.json()["next_before_id"]
        rest = await client.get(
            "/audit", params={"limit": 3, "before_id": cursor}, headers={"X-Operator": "ann"}
        )
        assert [e["entity_id"] for e in rest.json()["items"]] == ["1", "0"]
        assert rest.json()["next_before_id"] is None
        one = await client.get("/audit", params={"entity_id": "2"}, headers={"X-Operator": "a"})
        assert [e["entity_id"] for e in one.json()["items"]] == ["2"]
        anonymous = await client.get("/audit")
        assert anonymous.status_code == 401
