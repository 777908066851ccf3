"""The audit trail of customer-svc on a real PostgreSQL, in AUTH_MODE=jwt.

Every change an operator or a front end makes writes its row(s) in the change's own
transaction, naming the token's subject; the same call without ``customers:pii`` is 403,
writes no row and changes nothing. ``GET /audit`` needs the role and pages newest first.
The service's own connection cannot rewrite or empty the trail, only purge old rows.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from customer_svc.api.roles import PII_ROLE
from customer_svc.api.routes import router
from customer_svc.bootstrap import MIGRATIONS, SERVICE
from oms_servicekit.audit import audit_router
from oms_servicekit.auth import Authenticator
from oms_servicekit.http import create_app
from oms_servicekit.testing import (
    DatabaseOnlyRuntime,
    MigratedDatabase,
    TokenMint,
    assert_audit_pages_newest_first,
    assert_audit_trail_append_only,
    audit_rows,
    empty_database,
    last_audit_id,
    migrate,
    table_snapshot,
)

SUBJECT = "dana@example.com"
TOKENS = TokenMint(SUBJECT)
ADDR = {"region": "CN-SH", "city": "Shanghai", "line1": "1 Demo Road", "postal_code": "200000"}
PII = TOKENS.bearer(PII_ROLE)
NOT_PII = TOKENS.bearer("orders:read", "orders:write", "channels:admin", sub="eve@example.com")


def build_app(database: MigratedDatabase, authenticator: Authenticator | None) -> Any:
    return create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(database, producer=SERVICE),  # type: ignore[arg-type]
        routers=[router, audit_router(PII_ROLE)],
        authenticator=authenticator,
    )


@pytest.fixture
async def client(db: Any, database: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(database, TOKENS.authenticator()))
    async with httpx.AsyncClient(transport=transport, base_url="http://customer-svc") as client:
        yield client


@pytest.fixture
async def dev_client(db: Any, database: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(database, None))
    async with httpx.AsyncClient(transport=transport, base_url="http://customer-svc") as client:
        yield client


async def resolve(client: httpx.AsyncClient, user: str, **extra: Any) -> str:
    body = {"channel": "web", "platform_user_id": user, **extra}
    r = await client.post("/customers/resolve", json=body, headers=PII)
    assert r.status_code in (200, 201), r.text
    return str(r.json()["customer_id"])


Ctx = dict[str, Any]


@dataclass(frozen=True)
class Expected:
    action: str
    entity: str
    #: The entity id, from the context the setup built (None: any id).
    entity_id: Callable[[Ctx, Any], str] | None
    before: Callable[[Ctx], Any]
    after: Callable[[Ctx, dict[str, Any]], Any]


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[httpx.AsyncClient], Awaitable[Ctx]]
    #: method, path and keyword arguments of the call (headers are added by the test).
    call: Callable[[Ctx], tuple[str, str, dict[str, Any]]]
    status: int
    rows: list[Expected] = field(default_factory=list)


async def two_customers(client: httpx.AsyncClient) -> Ctx:
    return {"a": await resolve(client, "u1"), "b": await resolve(client, "u2")}


async def merged_pair(client: httpx.AsyncClient) -> Ctx:
    ctx = await two_customers(client)
    body = {"surviving_id": ctx["a"], "merged_id": ctx["b"]}
    r = await client.post("/customers/merge", json=body, headers=PII)
    assert r.status_code == 201, r.text
    return ctx | {"merge_id": r.json()["merge_id"]}


async def one_customer(client: httpx.AsyncClient) -> Ctx:
    return {"a": await resolve(client, "u1", name="Li Lei")}


async def phone_owner(client: httpx.AsyncClient) -> Ctx:
    return {"a": await resolve(client, "u1", phone="138 0000 0001")}


async def tagged(client: httpx.AsyncClient) -> Ctx:
    ctx = await one_customer(client)
    r = await client.post(f"/customers/{ctx['a']}/tags", json={"add": ["old"]}, headers=PII)
    assert r.status_code == 200, r.text
    return ctx


async def nothing(client: httpx.AsyncClient) -> Ctx:
    return {}


async def a_policy(client: httpx.AsyncClient) -> Ctx:
    r = await client.put(
        "/channel-policies/web", json={"required_fields": ["display_name"]}, headers=PII
    )
    assert r.status_code == 200, r.text
    return {}


RULES = {"rules": [{"name": "big", "tag": "vip", "expression": "order_count >= 3"}]}
CSV = (
    "channel,platform_user_id,name,phone\n"
    "web,u1,Li Lei,138 0000 0001\n"
    "web,u2,Han Meimei,not a phone\n"
)


def merge_counts(**moved: int) -> dict[str, int]:
    return {k: moved.get(k, 0) for k in ("identities", "orders", "tags", "complaints", "addresses")}


CASES = [
    Case(
        "resolve creates a customer",
        nothing,
        lambda c: (
            "POST",
            "/customers/resolve",
            {"json": {"channel": "web", "platform_user_id": "u9", "address": ADDR}},
        ),
        201,
        [
            Expected(
                "create",
                "customer",
                None,
                lambda c: None,
                lambda c, body: {
                    "matched_by": "new",
                    "identity": {"channel": "web", "platform_user_id": "u9"},
                    "address_added": True,
                },
            )
        ],
    ),
    Case(
        "resolve links an identity by phone",
        phone_owner,
        lambda c: (
            "POST",
            "/customers/resolve",
            {"json": {"channel": "app", "platform_user_id": "p1", "phone": "+8613800000001"}},
        ),
        200,
        [
            Expected(
                "resolve",
                "customer",
                lambda c, body: c["a"],
                lambda c: {},
                lambda c, body: {
                    "matched_by": "phone",
                    "identity": {"channel": "app", "platform_user_id": "p1"},
                },
            )
        ],
    ),
    Case(
        "import a CSV",
        nothing,
        lambda c: (
            "POST",
            "/customers/import",
            {"content": CSV, "headers": {"Content-Type": "text/csv"}},
        ),
        200,
        [
            Expected(
                "import",
                "customer_import",
                None,
                lambda c: None,
                lambda c, body: {
                    "bytes": len(CSV),
                    "sha256": hashlib.sha256(CSV.encode()).hexdigest(),
                    "rows": 2,
                    "complete": True,
                    "created": 1,
                    "matched": 0,
                    "merge_proposed": 0,
                    "rejected": 1,
                },
            )
        ],
    ),
    Case(
        "merge",
        two_customers,
        lambda c: (
            "POST",
            "/customers/merge",
            {"json": {"surviving_id": c["a"], "merged_id": c["b"]}},
        ),
        201,
        [
            Expected(
                "merge",
                "customer",
                lambda c, body: c["b"],
                lambda c: {"merged_into": None},
                lambda c, body: {"merged_into": c["a"], "merge_id": body["merge_id"]},
            ),
            Expected(
                "merge",
                "customer",
                lambda c, body: c["a"],
                lambda c: {},
                lambda c, body: {
                    "merge_id": body["merge_id"],
                    "merged_id": c["b"],
                    "moved": merge_counts(identities=1),
                },
            ),
        ],
    ),
    Case(
        "unmerge",
        merged_pair,
        lambda c: ("POST", f"/customers/{c['b']}/unmerge", {}),
        200,
        [
            Expected(
                "unmerge",
                "customer",
                lambda c, body: c["b"],
                lambda c: {"merged_into": c["a"], "merge_id": c["merge_id"]},
                lambda c, body: {"merged_into": None},
            ),
            Expected(
                "unmerge",
                "customer",
                lambda c, body: c["a"],
                lambda c: {
                    "merge_id": c["merge_id"],
                    "merged_id": c["b"],
                    "moved": merge_counts(identities=1),
                },
                lambda c, body: {},
            ),
        ],
    ),
    Case(
        "patch a customer",
        one_customer,
        lambda c: (
            "PATCH",
            f"/customers/{c['a']}",
            {"json": {"display_name": "Lei Li", "preferences": {"lang": "zh"}}},
        ),
        200,
        [
            Expected(
                "update",
                "customer",
                lambda c, body: c["a"],
                lambda c: {"display_name": "Li Lei", "preferences": {}},
                lambda c, body: {"display_name": "Lei Li", "preferences": {"lang": "zh"}},
            )
        ],
    ),
    Case(
        "put a channel policy",
        a_policy,
        lambda c: (
            "PUT",
            "/channel-policies/web",
            {"json": {"required_fields": ["display_name", "invoice.tax_id"]}},
        ),
        200,
        [
            Expected(
                "put",
                "channel_policy",
                lambda c, body: "web",
                lambda c: {"required_fields": ["display_name"]},
                lambda c, body: {"required_fields": ["display_name", "invoice.tax_id"]},
            )
        ],
    ),
    Case(
        "add a complaint",
        one_customer,
        lambda c: (
            "POST",
            f"/customers/{c['a']}/complaints",
            {"json": {"category": "late", "text": "the parcel came a week late"}},
        ),
        201,
        [
            Expected(
                "create",
                "complaint",
                lambda c, body: body["id"],
                lambda c: None,
                lambda c, body: {"customer_id": c["a"], "order_id": None, "category": "late"},
            )
        ],
    ),
    Case(
        "operator tags",
        tagged,
        lambda c: (
            "POST",
            f"/customers/{c['a']}/tags",
            {"json": {"add": ["vip"], "remove": ["old"]}},
        ),
        200,
        [
            Expected(
                "tags",
                "customer",
                lambda c, body: c["a"],
                lambda c: {"tags": {"old": "operator"}},
                lambda c, body: {"tags": {"vip": "operator"}},
            )
        ],
    ),
    Case(
        "put the tag rules",
        nothing,
        lambda c: ("PUT", "/tag-rules", {"json": RULES}),
        200,
        [
            Expected(
                "put",
                "tag_rules",
                lambda c, body: "all",
                lambda c: {"rules": []},
                lambda c, body: RULES,
            )
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_every_change_is_audited_and_refused_without_the_role(
    client: httpx.AsyncClient, engine: AsyncEngine, case: Case
) -> None:
    ctx = await case.setup(client)
    method, path, kwargs = case.call(ctx)
    headers = kwargs.pop("headers", {})
    before_state = await table_snapshot(engine)

    refused = await client.request(method, path, headers=headers | NOT_PII, **kwargs)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await table_snapshot(engine) == before_state, "a refused call changed something"

    start = await last_audit_id(engine)
    done = await client.request(method, path, headers=headers | PII, **kwargs)
    assert done.status_code == case.status, done.text
    body = done.json()
    rows = await audit_rows(engine, start)
    assert len(rows) == len(case.rows), rows
    for row, want in zip(rows, case.rows, strict=True):
        assert (row["actor"], row["action"], row["entity"]) == (SUBJECT, want.action, want.entity)
        if want.entity_id is not None:
            assert row["entity_id"] == want.entity_id(ctx, body)
        assert row["before"] == want.before(ctx)
        assert row["after"] == want.after(ctx, body if isinstance(body, dict) else {})
        assert row["at"] > datetime.now(UTC) - timedelta(minutes=1)


async def test_repeats_that_change_nothing_write_no_row(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    a = await resolve(client, "u1", name="Li Lei")
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/customers/resolve", {"json": {"channel": "web", "platform_user_id": "u1"}}),
        ("PATCH", f"/customers/{a}", {"json": {"display_name": "Li Lei"}}),
        ("PUT", "/tag-rules", {"json": RULES}),
        ("PUT", "/channel-policies/web", {"json": {"required_fields": []}}),
        ("POST", f"/customers/{a}/tags", {"json": {"add": ["vip"]}}),
    ]
    for method, path, kwargs in calls[2:]:  # make them hold already
        assert (await client.request(method, path, headers=PII, **kwargs)).is_success
    start = await last_audit_id(engine)
    for method, path, kwargs in calls:
        r = await client.request(method, path, headers=PII, **kwargs)
        assert r.is_success, r.text
    assert await audit_rows(engine, start) == []


async def test_refused_and_failed_changes_write_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    a = await resolve(client, "u1")
    start = await last_audit_id(engine)
    unknown = uuid.uuid4()
    calls: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", "/customers/merge", {"json": {"surviving_id": a, "merged_id": a}}, 422),
        ("POST", "/customers/merge", {"json": {"surviving_id": a, "merged_id": str(unknown)}}, 404),
        ("POST", f"/customers/{a}/unmerge", {}, 404),
        ("PATCH", f"/customers/{unknown}", {"json": {"display_name": "X"}}, 404),
        ("POST", f"/customers/{unknown}/complaints", {"json": {"text": "late"}}, 404),
        (
            "PUT",
            "/tag-rules",
            {"json": {"rules": [{"name": "x", "tag": "t", "expression": "("}]}},
            422,
        ),
        ("POST", "/customers/import", {"content": "name\nx\n"}, 422),
    ]
    for method, path, kwargs, status in calls:
        r = await client.request(method, path, headers=PII, **kwargs)
        assert r.status_code == status, (path, r.text)
    assert await audit_rows(engine, start) == []


async def test_dev_mode_names_the_x_operator_or_anonymous(
    dev_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = {"channel": "web", "platform_user_id": "u1"}
    r = await dev_client.post("/customers/resolve", json=body, headers={"X-Operator": "alice"})
    assert r.status_code == 201, r.text
    customer = r.json()["customer_id"]
    r = await dev_client.post(f"/customers/{customer}/complaints", json={"text": "late"})
    assert r.status_code == 201, r.text
    rows = await audit_rows(engine)
    assert [(r["action"], r["actor"]) for r in rows] == [
        ("create", "alice"),
        ("create", "anonymous"),
    ]


async def test_reading_the_trail_needs_the_role_and_pages_newest_first(
    client: httpx.AsyncClient,
) -> None:
    ids = [await resolve(client, f"u{i}") for i in range(3)]
    await assert_audit_pages_newest_first(client, ids, reader=PII, refused=NOT_PII)
    one = await client.get("/audit", params={"entity_id": ids[1]}, headers=PII)
    assert [i["entity_id"] for i in one.json()["items"]] == [ids[1]]


async def test_the_service_cannot_rewrite_or_empty_the_trail(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await resolve(client, "u1")
    await assert_audit_trail_append_only(engine, entity="customer")


# -- the migration that brought the trail in -------------------------------------------


@pytest.fixture
async def bare_engine() -> AsyncIterator[AsyncEngine]:
    async with empty_database("test_customer_svc_audit") as engine:
        yield engine


async def test_the_old_audit_log_moves_into_the_trail_and_back(bare_engine: AsyncEngine) -> None:
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    customer = uuid.uuid4()
    await migrate(bare_engine, MIGRATIONS, "0002")
    async with bare_engine.begin() as conn:
        await conn.execute(
            text(
                """INSERT INTO audit_log (at, actor, action, customer_id, details)
                VALUES (:at, 'alice', 'merge', :id, '{"merged_id": "m-1"}')"""
            ),
            {"at": at, "id": customer},
        )
    await migrate(bare_engine, MIGRATIONS, "head")
    [row] = await audit_rows(bare_engine)
    assert (row["at"], row["actor"], row["action"]) == (at, "alice", "merge")
    assert (row["entity"], row["entity_id"]) == ("customer", str(customer))
    assert (row["before"], row["after"]) == (None, {"merged_id": "m-1"})
    async with bare_engine.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('audit_log')")) is None

    await migrate(bare_engine, MIGRATIONS, "0002", down=True)
    async with bare_engine.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('audit_trail')")) is None
        back = (await conn.execute(text("SELECT * FROM audit_log"))).mappings().all()
    assert [(r["at"], r["actor"]) for r in back] == [(at, "alice")]
