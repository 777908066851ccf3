"""The audit checks every service's tests share, checked themselves: each passes on a
trail that behaves and fails (AssertionError, so the service test fails) on one that
does not, and leaves the trail as it found it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, text

from oms_messaging.tables import outbox
from oms_servicekit.audit import CREATE_AUDIT_TRAIL, audit_router, audit_trail
from oms_servicekit.problems import install_problem_handlers
from oms_servicekit.testing import (
    DatabaseOnlyRuntime,
    MigratedDatabase,
    TokenMint,
    assert_audit_pages_newest_first,
    assert_audit_trail_append_only,
    audit_rows,
    last_audit_id,
    migrated_database,
    table_snapshot,
)

MIGRATIONS = Path(__file__).resolve().parents[2] / "messaging" / "tests" / "migrations"
ROLE = "inventory:adjust"
TOKENS = TokenMint("ann@example.com")


@pytest.fixture
async def db() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, prefix="oms_testingtest") as database:
        async with database.engine.begin() as conn:
            for statement in CREATE_AUDIT_TRAIL:
                await conn.execute(text(statement))
        yield database


async def add_rows(db: MigratedDatabase, *entity_ids: str) -> None:
    async with db.engine.begin() as conn:
        for entity_id in entity_ids:
            await conn.execute(
                insert(audit_trail).values(
                    actor="ann", action="adjust", entity="stock", entity_id=entity_id
                )
            )


async def test_the_trail_is_read_from_an_id_on(db: MigratedDatabase) -> None:
    assert await last_audit_id(db.engine) == 0
    await add_rows(db, "a", "b")
    start = await last_audit_id(db.engine)
    await add_rows(db, "c")
    assert [r["entity_id"] for r in await audit_rows(db.engine)] == ["a", "b", "c"]
    assert [r["entity_id"] for r in await audit_rows(db.engine, start)] == ["c"]
    assert await last_audit_id(db.engine) == start + 1


async def test_a_snapshot_changes_with_any_row_of_any_table(db: MigratedDatabase) -> None:
    before = await table_snapshot(db.engine)
    assert {"audit_trail", "outbox"} <= before.keys()
    assert "alembic_version" not in before
    assert await table_snapshot(db.engine) == before
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(outbox).values(
                event_id=uuid.uuid4(), topic="t", key="k", event_type="E", payload="{}"
            )
        )
    assert (await table_snapshot(db.engine))["outbox"] != before["outbox"]


async def test_a_guarded_trail_passes_and_is_left_as_found(db: MigratedDatabase) -> None:
    await add_rows(db, "1", "2")
    kept = await audit_rows(db.engine)
    await assert_audit_trail_append_only(db.engine, entity="stock")
    assert await audit_rows(db.engine) == kept


async def test_an_empty_trail_fails(db: MigratedDatabase) -> None:
    with pytest.raises(AssertionError, match="empty"):
        await assert_audit_trail_append_only(db.engine, entity="stock")


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        ("DROP TRIGGER audit_trail_append_only ON audit_trail", "UPDATE of a recent row"),
        ("DROP TRIGGER audit_trail_no_truncate ON audit_trail", "TRUNCATE"),
        (
            "CREATE OR REPLACE FUNCTION oms_audit_trail_guard() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no' USING ERRCODE = '42501'; END $$",
            "past the retention floor",
        ),
    ],
    ids=["rows unguarded", "truncate unguarded", "old rows kept forever"],
)
async def test_a_broken_guard_fails(db: MigratedDatabase, broken: str, complaint: str) -> None:
    await add_rows(db, "1")
    async with db.engine.begin() as conn:
        await conn.execute(text(broken))
    with pytest.raises(AssertionError, match=complaint):
        await assert_audit_trail_append_only(db.engine, entity="stock")


@pytest.fixture
async def client(db: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.runtime = DatabaseOnlyRuntime(db, producer="test")
    app.state.authenticator = TOKENS.authenticator()
    app.include_router(audit_router(ROLE))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def test_paging_passes_on_the_real_route(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    await add_rows(db, "0", "1", "2", "3", "4")
    reader, refused = TOKENS.bearer(ROLE), TOKENS.bearer("orders:read")
    await assert_audit_pages_newest_first(client, list("01234"), reader=reader, refused=refused)
    await assert_audit_pages_newest_first(
        client, list("01234"), reader=reader, refused=refused, limit=4
    )


@pytest.mark.parametrize(
    ("expected", "reader_roles", "refused_roles", "complaint"),
    [
        (["2", "1", "0"], (ROLE,), ("orders:read",), "newest first"),
        (["0", "1", "2", "3"], (ROLE,), ("orders:read",), "newest first"),
        (["0", "1", "2"], (ROLE,), (ROLE,), "without the role: 200"),
        (["0", "1", "2"], ("orders:read",), ("orders:read",), "GET /audit: 403"),
    ],
    ids=["wrong order", "a row missing", "refused holds the role", "reader lacks it"],
)
async def test_paging_fails_when_the_trail_or_the_roles_differ(
    db: MigratedDatabase,
    client: httpx.AsyncClient,
    expected: list[str],
    reader_roles: tuple[str, ...],
    refused_roles: tuple[str, ...],
    complaint: str,
) -> None:
    await add_rows(db, "0", "1", "2")
    with pytest.raises(AssertionError, match=complaint):
        await assert_audit_pages_newest_first(
            client,
            expected,
            reader=TOKENS.bearer(*reader_roles),
            refused=TOKENS.bearer(*refused_roles),
        )


async def test_paging_needs_more_rows_than_a_page(client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="more rows"):
        await assert_audit_pages_newest_first(
            client, ["0", "1"], reader=TOKENS.bearer(ROLE), refused=TOKENS.bearer()
        )
