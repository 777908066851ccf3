"""Orders placed over HTTP and operator actions, on a real PostgreSQL (no broker)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from oms_contracts.events import ReservedLine, StockReserved
from oms_servicekit.http import create_app
from oms_servicekit.testing import (
    DatabaseOnlyRuntime,
    EventDrivers,
    MigratedDatabase,
    migrated_database,
)
from order_svc.api.operator_routes import router as operator_router
from order_svc.api.routes import router
from order_svc.bootstrap import MIGRATIONS, SERVICE
from order_svc.settings import OrderSettings

OPERATOR = {"X-Operator": "alice"}


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, "test_order_api", producer=SERVICE) as db:
        yield db


@pytest.fixture
async def api(
    database: MigratedDatabase, drivers: EventDrivers
) -> AsyncIterator[httpx.AsyncClient]:
    await database.truncate()
    database.drivers = drivers
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(database, producer=SERVICE),  # type: ignore[arg-type]
        routers=[router, operator_router],
    )
    app.state.settings = OrderSettings()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://order-svc") as client:
        yield client


def new_order(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "web",
        "channel_order_id": f"FE-{uuid.uuid4().hex[:8]}",
        "customer": {"platform_user_id": "u-1", "name": "Li Lei"},
        "lines": [
            {"line_no": 1, "sku": "SKU-1", "qty": 2, "unit_price": "19.90"},
            {"line_no": 2, "sku": "SKU-2", "qty": 1, "unit_price": "5.00"},
        ],
        "currency": "CNY",
        "paid": True,
        "shipping_address": {"region": "CN-SH", "city": "Shanghai"},
    }
    body.update(overrides)
    return body


async def events(db: MigratedDatabase, order_id: str, event_type: str) -> list[dict[str, Any]]:
    return [
        row["envelope"].payload
        for row in await db.outbox_rows()
        if row["event_type"] == event_type and row["key"] == order_id
    ]


async def confirmed_order(api: httpx.AsyncClient, db: MigratedDatabase) -> str:
    r = await api.post("/orders", json=new_order())
    assert r.status_code == 201, r.text
    order_id = str(r.json()["id"])
    reserved = StockReserved(
        order_id=uuid.UUID(order_id),
        lines=[
            ReservedLine(line_no=1, sku="SKU-1", qty=2, warehouse="WH-SH"),
            ReservedLine(line_no=2, sku="SKU-2", qty=1, warehouse="WH-BJ"),
        ],
        reserved_at=datetime.now(UTC),
    )
    await db.deliver(reserved)
    return order_id


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()  # type: ignore[no-any-return]


async def test_a_placed_paid_order_asks_for_stock_at_once(
    api: httpx.AsyncClient, database: MigratedDatabase
) -> None:
    r = await api.post("/orders", json=new_order())
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["state"] == "paid" and order["total"] == "44.80"
    assert [h["to_state"] for h in order["history"]] == ["received", "paid"]
    assert len(await events(database, order["id"], "OrderPaid")) == 1
    assert len(await events(database, order["id"], "OrderCreated")) == 1


async def test_the_same_idempotency_key_and_body_is_one_order_with_the_same_answer(
    api: httpx.AsyncClient, database: MigratedDatabase
) -> None:
    body = new_order()
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await api.post("/orders", json=body, headers=key)
    again = await api.post("/orders", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    listed = (await api.get("/orders")).json()
    assert listed["total"] == 1

    other = await api.post("/orders", json=new_order(), headers=key)
    assert assert_problem(other, 422)["field"] == "Idempotency-Key"
    assert (await api.get("/orders")).json()["total"] == 1


async def test_the_same_channel_reference_twice_is_refused(api: httpx.AsyncClient) -> None:
    body = new_order()
    assert (await api.post("/orders", json=body)).status_code == 201
    assert_problem(await api.post("/orders", json=body), 409)
    assert_problem(await api.post("/orders", json={**body, "unknown": 1}), 422)


async def test_cancel_needs_an_operator_records_them_and_is_idempotent(
    api: httpx.AsyncClient, database: MigratedDatabase
) -> None:
    order_id = await confirmed_order(api, database)
    assert_problem(await api.post(f"/orders/{order_id}/cancel", json={"reason": "x"}), 401)

    r = await api.post(
        f"/orders/{order_id}/cancel", json={"reason": "customer asked"}, headers=OPERATOR
    )
    assert r.status_code == 200, r.text
    order = r.json()
    assert order["state"] == "cancelled" and order["cancel_reason"] == "customer asked"
    assert order["history"][-1]["actor"] == "alice"
    again = await api.post(
        f"/orders/{order_id}/cancel", json={"reason": "customer asked"}, headers=OPERATOR
    )
    assert again.status_code == 200 and again.json()["history"] == order["history"]
    cancelled = await events(database, order_id, "OrderCancelled")
    assert len(cancelled) == 1 and cancelled[0]["actor"] == "alice"


async def test_illegal_actions_answer_409_and_change_nothing(
    api: httpx.AsyncClient, database: MigratedDatabase
) -> None:
    r = await api.post("/orders", json=new_order())
    order_id = r.json()["id"]
    ship = {"carrier": "SF", "tracking_number": "SF123"}
    problem = assert_problem(
        await api.post(f"/orders/{order_id}/ship", json=ship, headers=OPERATOR), 409
    )
    assert (problem["state"], problem["target"]) == ("paid", "shipped")
    assert_problem(await api.post(f"/orders/{order_id}/deliver", headers=OPERATOR), 409)
    after = (await api.get(f"/orders/{order_id}")).json()
    assert after["state"] == "paid" and after["history"] == r.json()["history"]
    assert await events(database, order_id, "OrderShipped") == []
    assert_problem(
        await api.post(f"/orders/{uuid.uuid4()}/cancel", json={"reason": "x"}, headers=OPERATOR),
        404,
    )


async def test_an_order_is_picked_shipped_delivered_and_refunded_by_operators(
    api: httpx.AsyncClient, database: MigratedDatabase
) -> None:
    order_id = await confirmed_order(api, database)
    assert (await api.post(f"/orders/{order_id}/pick", headers=OPERATOR)).status_code == 200
    ship = {"carrier": "SF", "tracking_number": "SF123"}
    r = await api.post(f"/orders/{order_id}/ship", json=ship, headers=OPERATOR)
    assert r.status_code == 200, r.text
    assert (r.json()["carrier"], r.json()["tracking_number"]) == ("SF", "SF123")
    shipped = await events(database, order_id, "OrderShipped")
    assert len(shipped) == 1
    assert [(ln["sku"], ln["warehouse"]) for ln in shipped[0]["lines"]] == [
        ("SKU-1", "WH-SH"),
        ("SKU-2", "WH-BJ"),
    ]
    assert_problem(
        await api.post(f"/orders/{order_id}/cancel", json={"reason": "late"}, headers=OPERATOR),
        409,
    )
    r = await api.post(f"/orders/{order_id}/deliver", headers=OPERATOR)
    assert r.status_code == 200 and r.json()["state"] == "delivered"
    refund = {"reason": "damaged"}
    r = await api.post(f"/orders/{order_id}/refund", json=refund, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["state"] == "refunded"
    r = await api.post(f"/orders/{order_id}/refund", json=refund, headers=OPERATOR)
    assert r.status_code == 200
    refunded = await events(database, order_id, "OrderRefunded")
    assert len(refunded) == 1 and refunded[0]["amount"] == "44.80"
    assert await events(database, order_id, "OrderCancelled") == []  # the stock had left
    assert [h["to_state"] for h in r.json()["history"]] == [
        "received",
        "paid",
        "reserved",
        "confirmed",
        "routed",
        "picking",
        "shipped",
        "delivered",
        "refunded",
    ]


async def test_a_refund_before_shipment_releases_the_stock(
    api: httpx.AsyncClient, database: MigratedDatabase
) -> None:
    r = await api.post("/orders", json=new_order())
    order_id = r.json()["id"]
    r = await api.post(f"/orders/{order_id}/refund", json={"reason": "dup"}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["state"] == "refunded"
    assert len(await events(database, order_id, "OrderCancelled")) == 1
    assert len(await events(database, order_id, "OrderRefunded")) == 1


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"unit_price": "-5.00"}, "lines.0.unit_price"),
        ({"unit_price": "56772132398477180.00"}, "lines.0.unit_price"),
        ({"qty": 50_697_530}, "lines.0.qty"),
        ({"sku": ""}, "lines.0.sku"),
        ({"state": "shipped"}, "lines.0.state"),
    ],
)
async def test_out_of_range_or_unknown_line_values_are_422_naming_the_field(
    api: httpx.AsyncClient, line: dict[str, Any], field: str
) -> None:
    body = new_order()
    body["lines"][0].update(line)
    problem = assert_problem(await api.post("/orders", json=body), 422)
    assert field in {e["field"] for e in problem["errors"]}, problem
    r = await api.get("/orders", params={"limit": 500})
    assert body["channel_order_id"] not in {o["channel_order_id"] for o in r.json()["items"]}
