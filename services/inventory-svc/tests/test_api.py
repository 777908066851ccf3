"""inventory-svc's HTTP API on a real database: the operator's paths work, every refusal is
a 4xx problem+json naming the field at fault, and a refused request changes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from inventory_svc.api.routes import router
from inventory_svc.bootstrap import SERVICE
from oms_servicekit.http import create_app
from oms_servicekit.problems import PROBLEM_JSON
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase

OPERATOR = {"X-Operator": "stock.keeper@example.com"}
SHANGHAI = {"code": "WH-SH", "name": "Shanghai", "region": "CN-SH", "latitude": 31.2,
            "longitude": 121.5, "capabilities": ["cold_chain"]}  # fmt: skip
BEIJING = {"code": "WH-BJ", "name": "Beijing", "region": "CN-BJ", "latitude": 39.9,
           "longitude": 116.4}  # fmt: skip


@pytest.fixture
async def client(database: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    await database.truncate()
    runtime = DatabaseOnlyRuntime(database, producer=SERVICE)
    app = create_app(title=SERVICE, runtime=runtime, routers=[router])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
        for warehouse in (SHANGHAI, BEIJING):
            assert (await client.post("/warehouses", json=warehouse)).status_code == 201
        r = await client.post("/skus", json={"sku": "SKU-1", "name": "Tea", "attributes": {}})
        assert r.status_code == 201, r.text
        r = await client.post(
            "/stock/receipts",
            json={"sku": "SKU-1", "warehouse": "WH-SH", "qty": 10, "reason": "initial"},
            headers=OPERATOR,
        )
        assert r.status_code == 201, r.text
        yield client


def assert_problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = r.json()
    if field is not None:
        fields = {body.get("field"), *(e.get("field") for e in body.get("errors", []))}
        assert field in fields, body
    return body


async def stock_of(client: httpx.AsyncClient, sku: str = "SKU-1") -> dict[str, tuple[int, int]]:
    r = await client.get(f"/stock/{sku}")
    assert r.status_code == 200, r.text
    return {w["warehouse"]: (w["on_hand"], w["reserved"]) for w in r.json()["warehouses"]}


async def test_receipt_adjustment_and_transfer_move_stock_and_land_in_the_ledger(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/stock/adjustments",
        json={"sku": "SKU-1", "warehouse": "WH-SH", "delta": -2, "reason": "damaged"},
        headers=OPERATOR,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/stock/transfers",
        json={"from": "WH-SH", "to": "WH-BJ", "sku": "SKU-1", "qty": 3, "reason": "rebalance"},
        headers=OPERATOR,
    )
    assert r.status_code == 201, r.text
    assert await stock_of(client) == {"WH-SH": (5, 0), "WH-BJ": (3, 0)}

    r = await client.get("/ledger", params={"sku": "SKU-1"})
    assert r.status_code == 200, r.text
    rows = r.json()["items"]
    assert {row["operator"] for row in rows} == {OPERATOR["X-Operator"]}
    assert {row["reason"] for row in rows} >= {"initial", "damaged", "rebalance"}
    sums: dict[str, int] = {}
    for row in rows:
        sums[row["warehouse"]] = sums.get(row["warehouse"], 0) + row["delta_on_hand"]
    assert sums == {"WH-SH": 5, "WH-BJ": 3}


async def test_policy_round_trips_and_warehouses_are_listed(client: httpx.AsyncClient) -> None:
    r = await client.put(
        "/skus/SKU-1/policy",
        json={"safety_stock": 2, "channel_caps": {"live": "60%", "app": 4}},
    )
    assert r.status_code == 200, r.text
    r = await client.get("/skus/SKU-1/policy")
    assert r.status_code == 200, r.text
    assert r.json()["safety_stock"] == 2
    assert r.json()["channel_caps"] == {"live": "60%", "app": 4}
    r = await client.get("/warehouses")
    assert {w["code"]: w["capabilities"] for w in r.json()} == {
        "WH-SH": ["cold_chain"],
        "WH-BJ": [],
    }


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        (
            "/stock/receipts",
            {"sku": "SKU-1", "warehouse": "WH-SH", "qty": -5, "reason": "x"},
            422,
            "qty",
        ),
        (
            "/stock/receipts",
            {"sku": "NOPE", "warehouse": "WH-SH", "qty": 5, "reason": "x"},
            422,
            "sku",
        ),
        (
            "/stock/receipts",
            {"sku": "SKU-1", "warehouse": "WH-XX", "qty": 5, "reason": "x"},
            422,
            "warehouse",
        ),
        (
            "/stock/adjustments",
            {"sku": "SKU-1", "warehouse": "WH-SH", "delta": -11, "reason": "lost"},
            409,
            None,
        ),
        (
            "/stock/adjustments",
            {"sku": "SKU-1", "warehouse": "WH-SH", "delta": -1},
            422,
            "reason",
        ),
        (
            "/stock/transfers",
            {"from": "WH-SH", "to": "WH-BJ", "sku": "SKU-1", "qty": 11, "reason": "x"},
            409,
            None,
        ),
        (
            "/stock/receipts",
            {"sku": "SKU-1", "warehouse": "WH-SH", "qty": 5, "reason": "x", "reserved": 3},
            422,
            "reserved",
        ),
    ],
)
async def test_bad_stock_requests_are_refused_and_change_nothing(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], status: int, field: str | None
) -> None:
    before = await stock_of(client)
    r = await client.post(path, json=body, headers=OPERATOR)
    assert_problem(r, status, field)
    assert await stock_of(client) == before


async def test_stock_changes_without_an_operator_identity_are_refused(
    client: httpx.AsyncClient,
) -> None:
    before = await stock_of(client)
    r = await client.post(
        "/stock/adjustments",
        json={"sku": "SKU-1", "warehouse": "WH-SH", "delta": 5, "reason": "found"},
    )
    assert r.status_code in (400, 401), r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert await stock_of(client) == before


async def test_a_cap_over_100_percent_is_refused_naming_the_channel(
    client: httpx.AsyncClient,
) -> None:
    ok = await client.put("/skus/SKU-1/policy", json={"channel_caps": {"live": "60%"}})
    assert ok.status_code == 200, ok.text
    r = await client.put("/skus/SKU-1/policy", json={"channel_caps": {"live": "120%"}})
    body = assert_problem(r, 422)
    assert "channel_caps" in str(body)
    r = await client.get("/skus/SKU-1/policy")
    assert r.status_code == 200, r.text
    assert r.json()["channel_caps"] == {"live": "60%"}  # the refused change changed nothing


async def test_unknown_sku_and_duplicate_warehouse(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/stock/NOPE"), 404)
    assert_problem(await client.post("/warehouses", json=SHANGHAI), 409, "code")
    bad = {**BEIJING, "code": "WH-NEW", "latitude": 123}
    assert_problem(await client.post("/warehouses", json=bad), 422, "latitude")


@pytest.mark.parametrize("text", ["bad\x00name", "bad\ud800name"])
async def test_text_the_database_cannot_store_is_422_and_nothing_is_stored(
    client: httpx.AsyncClient, text: str
) -> None:
    body = {**BEIJING, "code": "WH-ODD", "name": text}
    raw = json.dumps(body).encode()  # ASCII escapes carry the odd characters
    r = await client.post("/warehouses", content=raw, headers={"Content-Type": "application/json"})
    assert_problem(r, 422)
    codes = {w["code"] for w in (await client.get("/warehouses")).json()}
    assert "WH-ODD" not in codes
