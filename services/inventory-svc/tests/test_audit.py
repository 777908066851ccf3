"""The audit trail of inventory-svc on a real PostgreSQL: every operator change writes one
row (who, what, before/after) in its own transaction; the same call without
``inventory:adjust`` is 403 and changes nothing, not even the trail; a refused or repeated
change writes none; ``GET /audit`` needs the role and pages newest first; and the
service's own connection cannot rewrite or empty the trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from sqlalchemy import text

from inventory_svc.api.forecast_routes import router as forecast_router
from inventory_svc.api.roles import ADJUST_ROLE
from inventory_svc.api.routes import router
from inventory_svc.bootstrap import SERVICE, build_app
from oms_servicekit.audit import audit_router
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

KEEPER = "keeper@example.com"
TOKENS = TokenMint(KEEPER)
SHANGHAI = {"code": "WH-SH", "name": "Shanghai", "region": "CN-SH", "latitude": 31.2,
            "longitude": 121.5}  # fmt: skip
BEIJING = {"code": "WH-BJ", "name": "Beijing", "region": "CN-BJ", "latitude": 39.9,
           "longitude": 116.4}  # fmt: skip
POLICY = {"safety_stock": 1, "abc_override": "A"}


ADJUSTER = TOKENS.bearer(ADJUST_ROLE)
READER = TOKENS.bearer("orders:read", "alerts:ack")


def app_for(database: MigratedDatabase, auth_mode: Literal["dev", "jwt"]) -> httpx.AsyncClient:
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(database, producer=SERVICE),  # type: ignore[arg-type]
        routers=[router, forecast_router, audit_router(ADJUST_ROLE)],
        authenticator=TOKENS.authenticator(auth_mode),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inventory")


@pytest.fixture
async def client(database: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    """A jwt-mode app on a database holding two warehouses, SKU-1 (10 units at WH-SH,
    policy ``POLICY``)."""
    await database.truncate()
    async with app_for(database, "jwt") as client:
        for path, body in [
            ("/warehouses", SHANGHAI),
            ("/warehouses", BEIJING),
            ("/skus", {"sku": "SKU-1", "name": "Tea", "attributes": {}}),
            ("/stock/receipts", {"sku": "SKU-1", "warehouse": "WH-SH", "qty": 10,
                                 "reason": "initial"}),
        ]:  # fmt: skip
            r = await client.post(path, json=body, headers=ADJUSTER)
            assert r.status_code == 201, r.text
        r = await client.put("/skus/SKU-1/policy", json=POLICY, headers=ADJUSTER)
        assert r.status_code == 200, r.text
        yield client


def level(on_hand: int, reserved: int = 0) -> dict[str, int]:
    return {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved}


@dataclass
class Case:
    method: str
    path: str
    body: dict[str, Any] | None
    action: str
    entity: str
    #: None: an id the call makes up (checked against the response where it names one).
    entity_id: str | None
    before: Any = None
    after: Any = None
    #: The response field holding the new entity's id, when the service makes it up.
    id_field: str | None = None
    status: int = 200
    #: SQL arranging what the call needs (besides the fixture's data).
    setup: str | None = None


def _classes_after(after: dict[str, Any]) -> bool:
    return bool(after["changed"] == 1 and after["classes"] == {"SKU-1": "C"})


def _refreshed(after: dict[str, Any]) -> bool:
    return bool(after["forecasts"] >= 1 and after["suggestions"] >= 1)


CASES = {
    "add warehouse": Case(
        "POST", "/warehouses",
        {"code": "WH-GZ", "name": "Guangzhou", "region": "CN-GD", "latitude": 23.1,
         "longitude": 113.3, "shipping_costs": {"CN-GD": "6.50"}},
        "warehouse.create", "warehouse", "WH-GZ",
        after={"name": "Guangzhou", "region": "CN-GD", "latitude": 23.1, "longitude": 113.3,
               "capabilities": [], "shipping_costs": {"CN-GD": "6.50"}},
        status=201,
    ),
    "update warehouse": Case(
        "PUT", "/warehouses/WH-SH", {**{k: v for k, v in SHANGHAI.items() if k != "code"},
                                     "name": "Shanghai East", "capabilities": ["cold_chain"]},
        "warehouse.update", "warehouse", "WH-SH",
        before={"name": "Shanghai", "capabilities": []},
        after={"name": "Shanghai East", "capabilities": ["cold_chain"]},
    ),
    "add SKU": Case(
        "POST", "/skus", {"sku": "SKU-2", "name": "Green tea", "attributes": {"tin": True}},
        "sku.create", "sku", "SKU-2",
        after={"name": "Green tea", "attributes": {"tin": True}}, status=201,
    ),
    "put policy": Case(
        "PUT", "/skus/SKU-1/policy", {**POLICY, "safety_stock": 3, "channel_caps": {"live": 4}},
        "sku.policy.update", "sku_policy", "SKU-1",
        before={"safety_stock": 1, "channel_caps": {}},
        after={"safety_stock": 3, "channel_caps": {"live": {"units": 4}}},
    ),
    "recompute ABC": Case(
        "POST", "/abc/recompute", None, "abc.recompute", "abc_classes", "all",
        before={"classes": {"SKU-1": "A"}}, after=_classes_after,
        # As computed before SKU-1's sales fell out of the window: recomputing moves it.
        setup="UPDATE sku_policies SET abc_class = 'A' WHERE sku = 'SKU-1'",
    ),
    "receive stock": Case(
        "POST", "/stock/receipts",
        {"sku": "SKU-1", "warehouse": "WH-SH", "qty": 5, "reason": "inbound"},
        "stock.receipt", "stock", "SKU-1",
        before={"WH-SH": level(10)}, after={"WH-SH": level(15)}, status=201,
    ),
    "adjust stock": Case(
        "POST", "/stock/adjustments",
        {"sku": "SKU-1", "warehouse": "WH-SH", "delta": -2, "reason": "damaged"},
        "stock.adjustment", "stock", "SKU-1",
        before={"WH-SH": level(10)}, after={"WH-SH": level(8)}, status=201,
    ),
    "count stock": Case(
        "POST", "/stock/adjustments",
        {"sku": "SKU-1", "warehouse": "WH-SH", "delta": 1, "reason": "found",
         "kind": "cycle_count"},
        "stock.cycle_count", "stock", "SKU-1",
        before={"WH-SH": level(10)}, after={"WH-SH": level(11)}, status=201,
    ),
    "transfer stock": Case(
        "POST", "/stock/transfers",
        {"from": "WH-SH", "to": "WH-BJ", "sku": "SKU-1", "qty": 3, "reason": "rebalance"},
        "stock.transfer", "stock", "SKU-1",
        before={"WH-SH": level(10), "WH-BJ": level(0)},
        after={"WH-SH": level(7), "WH-BJ": level(3)}, status=201,
    ),
    "add promotion": Case(
        "POST", "/promotions",
        {"name": "Double 11", "skus": ["SKU-1"], "start_date": "2026-11-10",
         "end_date": "2026-11-12", "expected_uplift": "1.5"},
        "promotion.create", "promotion", None,
        after={"name": "Double 11", "channel": None, "start_date": "2026-11-10",
               "end_date": "2026-11-12", "expected_uplift": "1.5", "sku_count": 1,
               "skus": ["SKU-1"]},
        id_field="id", status=201,
    ),
    "put supply": Case(
        "PUT", "/skus/SKU-1/supply", {"lead_time_days": 10, "on_order": {"WH-SH": 5}},
        "sku.supply.update", "sku_supply", "SKU-1",
        after={"lead_time_days": 10, "on_order": {"WH-SH": 5}},
    ),
    "import sales history": Case(
        "POST", "/sales-history/import",
        {"rows": [{"sku": "SKU-1", "warehouse": "WH-SH", "channel": "web",
                   "day": "2026-11-01", "qty": 4},
                  {"sku": "SKU-1", "warehouse": "WH-SH", "channel": "app",
                   "day": "2026-11-02", "qty": 6}]},
        "sales_history.import", "sales_history_import", None,
        after={"rows": 2, "sku_count": 1, "skus": ["SKU-1"], "warehouses": ["WH-SH"],
               "channels": ["app", "web"], "first_day": "2026-11-01",
               "last_day": "2026-11-02"},
    ),
    "refresh forecasts": Case(
        "POST", "/forecast/refresh", None, "forecast.refresh", "forecasts", "all",
        after=_refreshed,
    ),
}  # fmt: skip


def matches(expected: Any, actual: Any) -> bool:
    return bool(expected(actual)) if callable(expected) else bool(expected == actual)


async def arrange(database: MigratedDatabase, case: Case) -> None:
    if case.setup is not None:
        async with database.engine.begin() as conn:
            await conn.execute(text(case.setup))


async def call(client: httpx.AsyncClient, case: Case, headers: dict[str, str]) -> httpx.Response:
    return await client.request(case.method, case.path, json=case.body, headers=headers)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_an_applied_change_writes_one_row_naming_its_operator(
    client: httpx.AsyncClient, database: MigratedDatabase, case: Case
) -> None:
    await arrange(database, case)
    start = await last_audit_id(database.engine)
    r = await call(client, case, ADJUSTER)
    assert r.status_code == case.status, r.text

    rows = await audit_rows(database.engine, start)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["actor"], row["action"], row["entity"]) == (KEEPER, case.action, case.entity)
    if case.entity_id is not None:
        assert row["entity_id"] == case.entity_id
    elif case.id_field is not None:
        assert row["entity_id"] == r.json()[case.id_field]
    else:
        assert row["entity_id"]
    assert matches(case.before, row["before"]), row["before"]
    assert matches(case.after, row["after"]), row["after"]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_the_same_change_without_the_role_is_403_and_changes_nothing(
    client: httpx.AsyncClient, database: MigratedDatabase, case: Case
) -> None:
    await arrange(database, case)
    before = await table_snapshot(database.engine)
    r = await call(client, case, READER)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await call(client, case, {})).status_code == 401
    assert await table_snapshot(database.engine) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "/warehouses/WH-XX", {"name": "X", "region": "CN", "latitude": 0,
                                      "longitude": 0}, 404),
        ("POST", "/warehouses", SHANGHAI, 409),
        ("POST", "/skus", {"sku": "SKU-1", "name": "Tea again"}, 409),
        ("PUT", "/skus/SKU-9/policy", POLICY, 404),
        ("POST", "/stock/adjustments",
         {"sku": "SKU-1", "warehouse": "WH-SH", "delta": -11, "reason": "lost"}, 409),
        ("POST", "/stock/transfers",
         {"from": "WH-SH", "to": "WH-BJ", "sku": "SKU-1", "qty": 11, "reason": "x"}, 409),
        ("POST", "/stock/receipts",
         {"sku": "SKU-1", "warehouse": "WH-XX", "qty": 1, "reason": "x"}, 422),
        ("POST", "/promotions", {"name": "P", "skus": ["SKU-9"], "start_date": "2026-11-10",
                                 "end_date": "2026-11-12", "expected_uplift": "1.5"}, 422),
        ("PUT", "/skus/SKU-1/supply", {"on_order": {"WH-XX": 1}}, 422),
        ("POST", "/sales-history/import", {"rows": [{"sku": "SKU-9", "warehouse": "WH-SH",
                                                     "channel": "web", "day": "2026-11-01",
                                                     "qty": 1}]}, 422),
    ],
)  # fmt: skip
async def test_a_refused_change_writes_no_row(
    client: httpx.AsyncClient,
    database: MigratedDatabase,
    method: str,
    path: str,
    body: dict[str, Any],
    status: int,
) -> None:
    before = await table_snapshot(database.engine)
    r = await client.request(method, path, json=body, headers=ADJUSTER)
    assert r.status_code == status, r.text
    assert await table_snapshot(database.engine) == before


@pytest.mark.parametrize("name", ["update warehouse", "put policy", "put supply"])
async def test_a_repeat_that_changes_nothing_writes_no_new_row(
    client: httpx.AsyncClient, database: MigratedDatabase, name: str
) -> None:
    case = CASES[name]
    assert (await call(client, case, ADJUSTER)).status_code == case.status
    start = await last_audit_id(database.engine)
    assert (await call(client, case, ADJUSTER)).status_code == case.status
    assert await audit_rows(database.engine, start) == []


async def test_a_recompute_that_moves_no_sku_writes_no_new_row(
    client: httpx.AsyncClient, database: MigratedDatabase
) -> None:
    await arrange(database, CASES["recompute ABC"])
    start = await last_audit_id(database.engine)
    assert (await client.post("/abc/recompute", headers=ADJUSTER)).status_code == 200
    assert len(await audit_rows(database.engine, start)) == 1
    start = await last_audit_id(database.engine)
    assert (await client.post("/abc/recompute", headers=ADJUSTER)).status_code == 200
    assert await audit_rows(database.engine, start) == []


async def test_dev_mode_names_the_x_operator_or_anonymous_on_open_routes(
    database: MigratedDatabase,
) -> None:
    await database.truncate()
    async with app_for(database, "dev") as client:
        r = await client.post("/warehouses", json=SHANGHAI)
        assert r.status_code == 201, r.text
        r = await client.post(
            "/warehouses", json=BEIJING, headers={"X-Operator": "ops@example.com"}
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            "/skus", json={"sku": "S", "name": "x"}, headers={"X-Operator": "bad\x01"}
        )
        assert r.status_code == 400, r.text
    rows = await audit_rows(database.engine)
    assert [(row["entity_id"], row["actor"]) for row in rows] == [
        ("WH-SH", "anonymous"),
        ("WH-BJ", "ops@example.com"),
    ]


async def test_reading_the_trail_needs_the_role_and_pages_newest_first(
    client: httpx.AsyncClient,
) -> None:
    for qty in (1, 2, 3):
        receipt = {"sku": "SKU-1", "warehouse": "WH-BJ", "qty": qty, "reason": "inbound"}
        r = await client.post("/stock/receipts", json=receipt, headers=ADJUSTER)
        assert r.status_code == 201, r.text
    # Four stock rows: the fixture's first receipt, then these three.
    levels = [{"WH-SH": level(10)}, {"WH-BJ": level(1)}, {"WH-BJ": level(3)}, {"WH-BJ": level(6)}]
    await assert_audit_pages_newest_first(
        client,
        levels,
        reader=ADJUSTER,
        refused=READER,
        params={"entity": "stock"},
        key=lambda item: item["after"],
    )


async def test_the_service_cannot_rewrite_or_empty_the_trail(
    client: httpx.AsyncClient, database: MigratedDatabase
) -> None:
    # The client fixture's set-up went through the API as an operator: the trail has rows.
    await assert_audit_trail_append_only(database.engine, entity="sku")


def test_the_service_serves_the_trail() -> None:
    assert "/audit" in build_app().openapi()["paths"]
