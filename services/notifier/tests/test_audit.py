"""The audit trail of notifier on a real PostgreSQL, in AUTH_MODE=jwt.

Acknowledging an alert and creating or deleting a subscription each write one row in the
action's own transaction, naming the token's subject (and never a subscription's target
or secret); the same call without its role is 403, writes no row and changes nothing.
``GET /audit`` needs ``alerts:ack`` and pages newest first. The service's own connection
cannot rewrite or empty the trail, only purge old rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from notifier.alerting import AlertingConfig
from notifier.api.roles import ALERTS_ROLE
from notifier.api.routes import router
from notifier.bootstrap import MIGRATIONS
from notifier.handlers import SERVICE
from oms_contracts.events import StockLow
from oms_servicekit.audit import audit_router
from oms_servicekit.auth import ROLES
from oms_servicekit.http import create_app
from oms_servicekit.testing import (
    DatabaseOnlyRuntime,
    TokenMint,
    assert_audit_pages_newest_first,
    assert_audit_trail_append_only,
    audit_rows,
    empty_database,
    last_audit_id,
    migrate,
    table_snapshot,
)

SUBJECT = "frank@example.com"
TOKENS = TokenMint(SUBJECT)
bearer = TOKENS.bearer
HOOK = {
    "name": "ops hook",
    "event_types": ["StockLow"],
    "filter": {"warehouse": "WH-1"},
    "target": {"type": "webhook", "url": "http://127.0.0.1:9000/hook?token=s3cr3t"},
}


def all_but(role: str) -> dict[str, str]:
    return bearer(*sorted(ROLES - {role}), sub="eve@example.com")


@pytest.fixture
async def client(db: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(db, producer=SERVICE),  # type: ignore[arg-type]
        routers=[router, audit_router(ALERTS_ROLE)],
        authenticator=TOKENS.authenticator(),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        yield client


Ctx = dict[str, Any]


def timestamps_parsed(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """``values`` with its ``*_at`` texts as datetimes (the trail and the API may spell
    the same instant differently)."""
    if values is None:
        return None
    return {
        k: datetime.fromisoformat(v) if k.endswith("_at") and isinstance(v, str) else v
        for k, v in values.items()
    }


async def an_alert(client: httpx.AsyncClient, deliver: Any) -> Ctx:
    at = datetime.now(UTC)
    event = StockLow(sku="SKU-9", available=1, safety_stock=4, warehouse="WH-1", raised_at=at)
    await deliver(event, at=at, alerting=AlertingConfig())
    [alert] = (await client.get("/alerts", headers=bearer("orders:read"))).json()
    return {"id": alert["id"]}


async def nothing(client: httpx.AsyncClient, deliver: Any) -> Ctx:
    return {}


async def a_subscription(client: httpx.AsyncClient, deliver: Any) -> Ctx:
    r = await client.post("/subscriptions", json=HOOK, headers=bearer("channels:admin"))
    assert r.status_code == 201, r.text
    return {"id": r.json()["id"]}


AUDITED_HOOK = {
    "name": "ops hook",
    "event_types": ["StockLow"],
    "channel": None,
    "warehouse": "WH-1",
    "target_type": "webhook",
}


@dataclass(frozen=True)
class Case:
    name: str
    role: str
    setup: Callable[[httpx.AsyncClient, Any], Awaitable[Ctx]]
    call: Callable[[Ctx], tuple[str, str, dict[str, Any]]]
    status: int
    action: str
    entity: str
    #: The entity id from the setup's context and the answer's body.
    entity_id: Callable[[Ctx, Any], str]
    before: Any
    after: Callable[[Any], Any]


CASES = [
    Case(
        "acknowledge an alert",
        "alerts:ack",
        an_alert,
        lambda c: ("POST", f"/alerts/{c['id']}/ack", {}),
        200,
        "acknowledge",
        "alert",
        lambda c, body: c["id"],
        {"state": "open"},
        lambda body: timestamps_parsed(
            {"state": "acknowledged", "acknowledged_at": body["acknowledged_at"]}
        ),
    ),
    Case(
        "create a subscription",
        "channels:admin",
        nothing,
        lambda c: ("POST", "/subscriptions", {"json": HOOK}),
        201,
        "create",
        "subscription",
        lambda c, body: body["id"],
        None,
        lambda body: AUDITED_HOOK,
    ),
    Case(
        "delete a subscription",
        "channels:admin",
        a_subscription,
        lambda c: ("DELETE", f"/subscriptions/{c['id']}", {}),
        204,
        "delete",
        "subscription",
        lambda c, body: c["id"],
        AUDITED_HOOK,
        lambda body: None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_every_action_is_audited_and_refused_without_the_role(
    client: httpx.AsyncClient, engine: AsyncEngine, deliver: Any, case: Case
) -> None:
    ctx = await case.setup(client, deliver)
    method, path, kwargs = case.call(ctx)
    before_state = await table_snapshot(engine)

    refused = await client.request(method, path, headers=all_but(case.role), **kwargs)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await table_snapshot(engine) == before_state, "a refused call changed something"

    start = await last_audit_id(engine)
    done = await client.request(method, path, headers=bearer(case.role), **kwargs)
    assert done.status_code == case.status, done.text
    body = done.json() if done.content else None
    [row] = await audit_rows(engine, start)
    assert (row["actor"], row["action"], row["entity"]) == (SUBJECT, case.action, case.entity)
    assert row["entity_id"] == case.entity_id(ctx, body)
    assert row["before"] == case.before
    assert timestamps_parsed(row["after"]) == case.after(body)
    assert "s3cr3t" not in str(row), "a subscription's target leaked into the trail"


async def test_repeats_and_refusals_write_no_row(
    client: httpx.AsyncClient, engine: AsyncEngine, deliver: Any
) -> None:
    alert = await an_alert(client, deliver)
    sub = await a_subscription(client, deliver)
    ack, admin = bearer("alerts:ack"), bearer("channels:admin")
    assert (await client.post(f"/alerts/{alert['id']}/ack", headers=ack)).status_code == 200
    assert (await client.delete(f"/subscriptions/{sub['id']}", headers=admin)).status_code == 204
    start = await last_audit_id(engine)

    again = await client.post(f"/alerts/{alert['id']}/ack", headers=bearer("alerts:ack", sub="x"))
    assert again.status_code == 200 and again.json()["acknowledged_by"] == SUBJECT
    gone = await client.delete(f"/subscriptions/{sub['id']}", headers=admin)
    assert gone.status_code == 404
    unknown = await client.post(f"/alerts/{uuid.uuid4()}/ack", headers=ack)
    assert unknown.status_code == 404
    bad = await client.post(
        "/subscriptions",
        json={**HOOK, "target": {"type": "webhook", "url": "ftp://x"}},
        headers=admin,
    )
    assert bad.status_code == 422
    assert await audit_rows(engine, start) == []


async def test_reading_the_trail_needs_the_role_and_pages_newest_first(
    client: httpx.AsyncClient, deliver: Any
) -> None:
    ids = [(await a_subscription(client, deliver))["id"] for _ in range(3)]
    reader = bearer(ALERTS_ROLE)
    await assert_audit_pages_newest_first(client, ids, reader=reader, refused=all_but(ALERTS_ROLE))
    mine = await client.get("/audit", params={"actor": SUBJECT, "limit": 500}, headers=reader)
    assert len(mine.json()["items"]) == 3


async def test_the_service_cannot_rewrite_or_empty_the_trail(
    client: httpx.AsyncClient, engine: AsyncEngine, deliver: Any
) -> None:
    await a_subscription(client, deliver)
    await assert_audit_trail_append_only(engine, entity="subscription")


# -- the migration that brought the trail in -------------------------------------------


@pytest.fixture
async def bare_engine() -> AsyncIterator[AsyncEngine]:
    async with empty_database("test_notifier_audit") as engine:
        yield engine


async def test_the_old_audit_log_moves_into_the_trail_and_back(bare_engine: AsyncEngine) -> None:
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    customer = uuid.uuid4()
    await migrate(bare_engine, MIGRATIONS, "0003")
    async with bare_engine.begin() as conn:
        await conn.execute(
            text(
                """INSERT INTO audit_log (at, actor, action, entity, entity_id, detail)
                VALUES (:at, 'alice', 'create', 'subscription', :id, '{"merged_id": "m-1"}')"""
            ),
            {"at": at, "id": str(customer)},
        )
    await migrate(bare_engine, MIGRATIONS, "head")
    [row] = await audit_rows(bare_engine)
    assert (row["at"], row["actor"], row["action"]) == (at, "alice", "create")
    assert (row["entity"], row["entity_id"]) == ("subscription", str(customer))
    assert (row["before"], row["after"]) == (None, {"merged_id": "m-1"})
    async with bare_engine.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('audit_log')")) is None

    await migrate(bare_engine, MIGRATIONS, "0003", down=True)
    async with bare_engine.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('audit_trail')")) is None
        back = (await conn.execute(text("SELECT * FROM audit_log"))).mappings().all()
    assert [(r["at"], r["actor"]) for r in back] == [(at, "alice")]
