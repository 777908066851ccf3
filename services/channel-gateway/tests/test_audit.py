"""The audit trail of channel-gateway on a real PostgreSQL, in AUTH_MODE=jwt.

Adding or patching a channel, replacing its SKU map and importing orders each write one
row in the action's own transaction (the import: one row for the whole file), naming the
token's subject and never a webhook secret or marketplace credential; the same call
without ``channels:admin`` is 403, writes no row and changes nothing. Signed webhooks are
not operator actions and write none. ``GET /audit`` needs the role and pages newest
first. The service's own connection cannot rewrite or empty the trail, only purge old
rows.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from channel_gateway.api.roles import ADMIN_ROLE
from channel_gateway.api.routes import build_router
from channel_gateway.bootstrap import SERVICE
from channel_gateway.domain.signature import sign
from channel_gateway.imports import COLUMNS
from channel_gateway.settings import GatewaySettings
from oms_servicekit.audit import audit_router
from oms_servicekit.auth import ROLES, Authenticator
from oms_servicekit.http import create_app
from oms_servicekit.testing import (
    DatabaseOnlyRuntime,
    MigratedDatabase,
    TokenMint,
    assert_audit_pages_newest_first,
    assert_audit_trail_append_only,
    audit_rows,
    last_audit_id,
    table_snapshot,
)

SUBJECT = "erin@example.com"
TOKENS = TokenMint(SUBJECT)
SECRET = "whsec-first-0123456789"
NEW_SECRET = "whsec-second-9876543210"
SESSION = "top-session-key-abcdef"
APP_KEY = "app-key-12345"
#: None of these may ever appear in the trail.
CREDENTIALS = (SECRET, NEW_SECRET, SESSION, APP_KEY)
PULL = {"base_url": "http://127.0.0.1:9/router/rest", "app_key": APP_KEY, "session": SESSION}


ADMIN = TOKENS.bearer(ADMIN_ROLE)
NOT_ADMIN = TOKENS.bearer(*sorted(ROLES - {ADMIN_ROLE}), sub="eve@example.com")


def build_app(database: MigratedDatabase, authenticator: Authenticator | None) -> Any:
    return create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(database, producer=SERVICE),  # type: ignore[arg-type]
        routers=[build_router(GatewaySettings()), audit_router(ADMIN_ROLE)],
        authenticator=authenticator,
        body_limit_exempt=("/webhooks/", "/imports/"),
    )


@pytest.fixture
async def client(gdb: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(gdb, TOKENS.authenticator()))
    async with httpx.AsyncClient(transport=transport, base_url="http://channel-gateway") as c:
        yield c


@pytest.fixture
async def dev_client(gdb: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(gdb, None))
    async with httpx.AsyncClient(transport=transport, base_url="http://channel-gateway") as c:
        yield c


@pytest.fixture
def engine(gdb: MigratedDatabase) -> AsyncEngine:
    return gdb.engine


async def add_web(client: httpx.AsyncClient, **extra: Any) -> None:
    body = {"name": "web", "type": "generic", "secret": SECRET, **extra}
    r = await client.post("/channels", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text


async def nothing(client: httpx.AsyncClient) -> None:
    return None


async def web_with_map(client: httpx.AsyncClient) -> None:
    await add_web(client)
    mapping = {"mapping": {"CH-1": "SKU-1", "CH-2": "SKU-2"}}
    r = await client.put("/channels/web/sku-map", json=mapping, headers=ADMIN)
    assert r.status_code == 200, r.text


def import_row(i: int, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    values |= {
        "channel_order_id": f"IMP-{i}",
        "customer_id": f"cust-{i}",
        "customer_name": "Wang Fang",
        "sku": "CH-1",
        "qty": 1,
        "unit_price": "12.50",
        "currency": "CNY",
        "paid": "false",
        "region": "CN-BJ",
        "city": "Beijing",
        "address": "8 Import Street",
        "postal_code": "100000",
        "priority": "normal",
    }
    return values | overrides


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


CSV = as_csv([import_row(1), import_row(2, qty="zero"), import_row(3)])


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[httpx.AsyncClient], Awaitable[None]]
    #: method, path and keyword arguments of the call (auth headers are added by the test).
    call: tuple[str, str, dict[str, Any]]
    status: int
    action: str
    entity: str
    entity_id: str | None
    before: Any
    after: Any


CASES = [
    Case(
        "add a channel",
        nothing,
        (
            "POST",
            "/channels",
            {"json": {"name": "top", "type": "pull", "secret": SECRET, "pull": PULL}},
        ),
        201,
        "create",
        "channel",
        "top",
        None,
        {
            "type": "pull",
            "clock_skew_s": None,
            "split_shipment": "allow",
            "order_class_rules": [],
            "rate_limit_per_min": None,
            "pull": {
                "base_url": PULL["base_url"],
                "app_key": "***",
                "session": "***",
                "sign_method": "md5",
                "interval_s": 60.0,
                "page_size": 50,
                "overlap_s": 300,
                "initial_lookback_s": 86_400,
                "timeout_s": 10.0,
            },
            "secret": "***",
        },
    ),
    Case(
        "patch a channel and rotate its secret",
        add_web,
        ("PATCH", "/channels/web", {"json": {"clock_skew_s": 5, "secret": NEW_SECRET}}),
        200,
        "update",
        "channel",
        "web",
        {"clock_skew_s": None, "secret": "***"},
        {"clock_skew_s": 5, "secret": "*** (rotated)"},
    ),
    Case(
        "replace a SKU map",
        web_with_map,
        ("PUT", "/channels/web/sku-map", {"json": {"mapping": {"CH-1": "SKU-1", "CH-3": "X"}}}),
        200,
        "put_sku_map",
        "channel",
        "web",
        {"mappings": 2, "entries": {"CH-2": "SKU-2"}},
        {"mappings": 2, "entries": {"CH-3": "X"}},
    ),
    Case(
        "import orders",
        web_with_map,
        (
            "POST",
            "/imports/orders",
            {
                "params": {"channel": "web"},
                "content": CSV,
                "headers": {
                    "Content-Type": "text/csv",
                    "Content-Disposition": 'attachment; filename="orders-11-11.csv"',
                },
            },
        ),
        200,
        "import_orders",
        "import",
        None,
        None,
        {
            "channel": "web",
            "file_name": "orders-11-11.csv",
            "bytes": len(CSV),
            "rows": 3,
            "complete": True,
            "accepted": 2,
            "duplicate": 0,
            "updated": 0,
            "rejected": 1,
        },
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_every_change_is_audited_and_refused_without_the_role(
    client: httpx.AsyncClient, engine: AsyncEngine, case: Case
) -> None:
    await case.setup(client)
    method, path, kwargs = case.call
    kwargs = dict(kwargs)
    headers = kwargs.pop("headers", {})
    before_state = await table_snapshot(engine)

    refused = await client.request(method, path, headers=headers | NOT_ADMIN, **kwargs)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await table_snapshot(engine) == before_state, "a refused call changed something"

    start = await last_audit_id(engine)
    done = await client.request(method, path, headers=headers | ADMIN, **kwargs)
    assert done.status_code == case.status, done.text
    [row] = await audit_rows(engine, start)
    assert (row["actor"], row["action"], row["entity"]) == (SUBJECT, case.action, case.entity)
    if case.entity_id is not None:
        assert row["entity_id"] == case.entity_id
    assert (row["before"], row["after"]) == (case.before, case.after)
    assert not any(c in json.dumps(row, default=str) for c in CREDENTIALS), row


async def test_a_new_marketplace_session_is_a_change_but_stays_masked(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await add_web(client, type="pull", pull=PULL)
    start = await last_audit_id(engine)
    patch = {"pull": {**PULL, "session": "top-session-key-rotated"}}
    r = await client.patch("/channels/web", json=patch, headers=ADMIN)
    assert r.status_code == 200, r.text
    [row] = await audit_rows(engine, start)
    assert row["before"]["pull"]["session"] == row["after"]["pull"]["session"] == "***"
    assert "top-session-key-rotated" not in json.dumps(row, default=str)


async def test_repeats_refusals_and_webhooks_write_no_row(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await web_with_map(client)
    r = await client.patch("/channels/web", json={"clock_skew_s": 5}, headers=ADMIN)
    assert r.status_code == 200
    start = await last_audit_id(engine)

    calls: list[tuple[str, str, dict[str, Any], int]] = [
        ("PATCH", "/channels/web", {"json": {"clock_skew_s": 5}}, 200),
        (
            "PUT",
            "/channels/web/sku-map",
            {"json": {"mapping": {"CH-2": "SKU-2", "CH-1": "SKU-1"}}},
            200,
        ),
        ("POST", "/channels", {"json": {"name": "web", "secret": SECRET}}, 409),
        ("PATCH", "/channels/nope", {"json": {"clock_skew_s": 1}}, 404),
        ("PUT", "/channels/nope/sku-map", {"json": {"mapping": {}}}, 404),
        ("PUT", "/channels/web/sku-map", {"json": {"mapping": {"": "X"}}}, 422),
        ("POST", "/imports/orders", {"params": {"channel": "nope"}, "content": CSV}, 404),
    ]
    for method, path, kwargs, status in calls:
        headers = ADMIN | {"Content-Type": "text/csv"} if path == "/imports/orders" else ADMIN
        r = await client.request(method, path, headers=headers, **kwargs)
        assert r.status_code == status, (path, r.text)

    order = {
        "channel_order_id": "G-1",
        "customer": {"platform_user_id": "u1"},
        "lines": [{"sku": "CH-1", "qty": 1, "unit_price": "5.00"}],
        "currency": "CNY",
        "shipping_address": {"region": "CN-SH"},
    }
    raw = json.dumps(order).encode()
    signed = {
        "Content-Type": "application/json",
        "X-OMS-Signature": sign(SECRET, int(time.time()), raw),
    }
    assert (await client.post("/webhooks/web", content=raw, headers=signed)).status_code == 202
    assert await audit_rows(engine, start) == []


async def test_dev_mode_names_the_x_operator_or_anonymous(
    dev_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = {"name": "web", "secret": SECRET}
    r = await dev_client.post("/channels", json=body, headers={"X-Operator": "ops-anna"})
    assert r.status_code == 201, r.text
    r = await dev_client.patch("/channels/web", json={"clock_skew_s": 9})
    assert r.status_code == 200, r.text
    assert [(r["action"], r["actor"]) for r in await audit_rows(engine)] == [
        ("create", "ops-anna"),
        ("update", "anonymous"),
    ]


async def test_reading_the_trail_needs_the_role_and_pages_newest_first(
    client: httpx.AsyncClient,
) -> None:
    names = ["a", "b", "c"]
    for name in names:
        r = await client.post("/channels", json={"name": name, "secret": SECRET}, headers=ADMIN)
        assert r.status_code == 201, r.text
    await assert_audit_pages_newest_first(client, names, reader=ADMIN, refused=NOT_ADMIN)


async def test_the_service_cannot_rewrite_or_empty_the_trail(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await add_web(client)
    await assert_audit_trail_append_only(engine, entity="channel")
