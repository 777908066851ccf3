"""Sales history from order events, the forecast/promotions/supply/replenishment API and
the nightly refresh with its ReplenishmentSuggested announcements, on a real PostgreSQL
database (no broker: events stay in the outbox, where the tests read them)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from inventory_svc.adapters.forecast_tables import sales_lines
from inventory_svc.adapters.stock_repository import Change
from inventory_svc.api.forecast_routes import router as forecast_router
from inventory_svc.api.routes import router
from inventory_svc.bootstrap import SERVICE, build_app
from inventory_svc.domain.forecast_synthetic import synthetic_history
from inventory_svc.forecasting import nightly_refresh
from inventory_svc.inventory import Inventory
from oms_contracts import make_envelope
from oms_contracts.events import OrderCancelled, OrderLine, OrderPaid
from oms_servicekit.http import create_app
from oms_servicekit.problems import PROBLEM_JSON
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase

OPERATOR = {"X-Operator": "buyer@example.com"}
WH = "WH-1"


@pytest.fixture
async def client(db: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    runtime = DatabaseOnlyRuntime(db, producer=SERVICE)
    app = create_app(
        title=SERVICE,
        runtime=runtime,  # type: ignore[arg-type]
        routers=[router, forecast_router],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
        yield client


async def setup_sku(db: MigratedDatabase, sku: str, on_hand: int = 100, wh: str = WH) -> None:
    async with db.uow() as uow:
        inv = Inventory(uow)
        if not await inv.repo.warehouse_exists(wh):
            await inv.repo.add_warehouse(
                {"code": wh, "name": wh, "region": "CN-SH", "latitude": 31.2, "longitude": 121.5}
            )
        await inv.repo.add_sku({"sku": sku, "name": sku})
        await inv.receive(sku, wh, on_hand, Change("receipt", "test", "tester"))
        await uow.commit()


def paid(sku: str, qty: int, channel: str = "web", paid_at: datetime | None = None) -> OrderPaid:
    return OrderPaid(
        order_id=uuid.uuid4(),
        channel=channel,
        lines=[OrderLine(line_no=1, sku=sku, qty=qty, unit_price=Decimal("10"))],
        currency="CNY",
        total=Decimal(10 * qty),
        paid_at=paid_at or datetime.now(UTC),
    )


async def apply(db: MigratedDatabase, event: Any, **kw: Any) -> None:
    await db.deliver(event, **kw)


async def sold(db: MigratedDatabase, sku: str) -> int:
    async with db.session_factory() as s:
        rows = await s.execute(
            select(sales_lines.c.qty).where(
                sales_lines.c.sku == sku, sales_lines.c.cancelled.is_(False)
            )
        )
    return sum(rows.scalars())


def history_rows(sku: str, days: int, start_offset: int = 0) -> list[dict[str, Any]]:
    """The seeded synthetic history's last ``days`` days, ending yesterday."""
    demand = synthetic_history().demand[-days:]
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    first = yesterday - timedelta(days=days - 1)
    return [
        {
            "sku": sku,
            "warehouse": WH,
            "channel": "web",
            "day": (first + timedelta(days=i)).isoformat(),
            "qty": qty,
        }
        for i, qty in enumerate(demand)
    ]


async def backfill(client: httpx.AsyncClient, sku: str, days: int) -> None:
    answer = await client.post(
        "/sales-history/import", json={"rows": history_rows(sku, days)}, headers=OPERATOR
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"imported": days, "skus": [sku]}


def assert_problem(answer: httpx.Response, status: int, field: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    if field is not None:
        assert answer.json()["field"] == field


# -- sales history from order events ---------------------------------------------------------


async def test_paid_orders_count_once_and_cancellations_take_them_back(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "SKU-H", on_hand=50)
    first = paid("SKU-H", 3)
    envelope = make_envelope(first, producer="order-svc")
    await apply(db, first, envelope=envelope)
    await apply(db, first, envelope=envelope)  # redelivery
    await apply(db, first)  # a repeated OrderPaid, new event id
    assert await sold(db, "SKU-H") == 3

    second = paid("SKU-H", 4, channel="live")
    await apply(db, second)
    assert await sold(db, "SKU-H") == 7

    cancel = OrderCancelled(
        order_id=first.order_id,
        channel="web",
        reason="buyer asked",
        actor="buyer",
        cancelled_at=datetime.now(UTC),
    )
    await apply(db, cancel)
    await apply(db, cancel)  # a second cancellation event
    assert await sold(db, "SKU-H") == 4


async def test_rejected_orders_are_not_counted(db: MigratedDatabase) -> None:
    await setup_sku(db, "SKU-R", on_hand=2)
    await apply(db, paid("SKU-R", 5))
    assert await sold(db, "SKU-R") == 0


async def test_live_sales_reach_the_forecast(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    await setup_sku(db, "SKU-L", on_hand=500)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    for days_ago in range(5):
        await apply(db, paid("SKU-L", 2, paid_at=yesterday - timedelta(days_ago)))
    body = (await client.get("/forecast/SKU-L", params={"days": 7})).json()
    assert body["model"] == "moving_average"
    assert body["history_days"] == 5
    assert body["total"] == pytest.approx(14.0)


# -- GET /forecast -----------------------------------------------------------------------------


async def test_forecast_validation(db: MigratedDatabase, client: httpx.AsyncClient) -> None:
    await setup_sku(db, "SKU-V")
    for days in (6, 31, "x"):
        answer = await client.get("/forecast/SKU-V", params={"days": days})
        assert_problem(answer, 422, "days")
    assert_problem(await client.get("/forecast/NOPE"), 404)
    assert_problem(await client.get("/forecast/SKU-V", params={"warehouse": "WH-X"}), 422)


async def test_forecast_from_enough_history_is_the_model_with_intervals(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    await setup_sku(db, "SKU-F")
    await backfill(client, "SKU-F", 60)
    answer = await client.get("/forecast/SKU-F", params={"days": 14, "warehouse": WH})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "ets_additive_damped_trend_weekly"
    assert body["note"] is None
    assert body["cached"] is False
    assert body["history_days"] == 60
    assert body["history_end"] == (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    assert len(body["points"]) == 14
    assert body["points"][0]["day"] == datetime.now(UTC).date().isoformat()
    for point in body["points"]:
        assert 0 <= point["lower"] <= point["mean"] <= point["upper"]
    # The history sells ~50-80 a day.
    assert 30 * 14 < body["total"] < 100 * 14

    again = (await client.get("/forecast/SKU-F", params={"days": 7, "warehouse": WH})).json()
    assert again["cached"] is True
    assert again["points"] == body["points"][:7]
    all_warehouses = (await client.get("/forecast/SKU-F", params={"days": 7})).json()
    assert all_warehouses["warehouse"] is None
    assert all_warehouses["total"] == pytest.approx(again["total"])


async def test_short_history_falls_back_and_says_so(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    await setup_sku(db, "SKU-S")
    await backfill(client, "SKU-S", 10)
    body = (await client.get("/forecast/SKU-S", params={"days": 7})).json()
    assert body["model"] == "seasonal_naive"
    assert "only 10 days of history" in body["note"]
    last_week = [r["qty"] for r in history_rows("SKU-S", 10)][-7:]
    assert [p["mean"] for p in body["points"]] == last_week

    empty = (await client.get("/forecast/SKU-V0", params={"days": 7})).status_code
    assert empty == 404


# -- promotions --------------------------------------------------------------------------------


def promotion(**kw: Any) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    body: dict[str, Any] = {
        "name": "11.11",
        "channel": None,
        "skus": ["SKU-P"],
        "start_date": (today + timedelta(days=2)).isoformat(),
        "end_date": (today + timedelta(days=3)).isoformat(),
        "expected_uplift": "2.0",
    }
    body.update(kw)
    return body


async def test_promotion_validation(db: MigratedDatabase, client: httpx.AsyncClient) -> None:
    await setup_sku(db, "SKU-P")
    assert_problem(await client.post("/promotions", json=promotion()), 401, "X-Operator")
    today = date.today()
    backwards = promotion(start_date=today.isoformat(), end_date=(today - timedelta(1)).isoformat())
    assert_problem(
        await client.post("/promotions", json=backwards, headers=OPERATOR), 422, "end_date"
    )
    for uplift in ("0", "-1.5"):
        answer = await client.post(
            "/promotions", json=promotion(expected_uplift=uplift), headers=OPERATOR
        )
        assert_problem(answer, 422, "expected_uplift")
    unknown = promotion(skus=["SKU-P", "NOPE"])
    assert_problem(await client.post("/promotions", json=unknown, headers=OPERATOR), 422, "skus.1")


async def test_a_promotion_lifts_the_forecast_by_its_expected_uplift(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    await setup_sku(db, "SKU-P")
    await backfill(client, "SKU-P", 60)  # no promotion days in this stretch of history
    before = (await client.get("/forecast/SKU-P", params={"days": 7})).json()
    assert before["promotion_uplift"] is None

    created = await client.post("/promotions", json=promotion(), headers=OPERATOR)
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == "buyer@example.com"
    listed = (await client.get("/promotions", params={"sku": "SKU-P"})).json()
    assert [p["id"] for p in listed] == [created.json()["id"]]

    after = (await client.get("/forecast/SKU-P", params={"days": 7})).json()
    assert after["cached"] is False  # the promotion dropped the cached forecast
    assert after["promotion_uplift"] == {"value": 2.0, "source": "expected"}
    factors = [p["promotion_factor"] for p in after["points"]]
    assert factors == [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    for i in (2, 3):
        assert after["points"][i]["mean"] == pytest.approx(2 * before["points"][i]["mean"])


# -- supply and replenishment --------------------------------------------------------------------


async def test_supply_defaults_and_validation(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    await setup_sku(db, "SKU-U")
    default = (await client.get("/skus/SKU-U/supply")).json()
    assert default["lead_time_days"] == 7 and default["on_order"] == {}
    assert default["updated_by"] is None
    body = {"lead_time_days": 10, "on_order": {WH: 40}}
    assert_problem(await client.put("/skus/SKU-U/supply", json=body), 401, "X-Operator")
    assert_problem(await client.put("/skus/NOPE/supply", json=body, headers=OPERATOR), 404)
    bad = {"lead_time_days": 0}
    assert_problem(
        await client.put("/skus/SKU-U/supply", json=bad, headers=OPERATOR), 422, "lead_time_days"
    )
    assert_problem(
        await client.put("/skus/SKU-U/supply", json={"on_order": {WH: -1}}, headers=OPERATOR),
        422,
        f"on_order.{WH}",
    )
    assert_problem(
        await client.put("/skus/SKU-U/supply", json={"on_order": {"WH-X": 1}}, headers=OPERATOR),
        422,
        "on_order.WH-X",
    )
    put = await client.put("/skus/SKU-U/supply", json=body, headers=OPERATOR)
    assert put.status_code == 200
    assert (await client.get("/skus/SKU-U/supply")).json()["on_order"] == {WH: 40}


async def test_replenishment_is_the_documented_sum(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    await setup_sku(db, "SKU-Q", on_hand=100)
    await backfill(client, "SKU-Q", 10)  # seasonal naive: the forecast is the last week
    await client.put(
        "/skus/SKU-Q/supply", json={"lead_time_days": 7, "on_order": {WH: 30}}, headers=OPERATOR
    )
    await client.put("/skus/SKU-Q/policy", json={"safety_stock": 25})
    week = sum(r["qty"] for r in history_rows("SKU-Q", 10)[-7:])

    answer = await client.get("/replenishment", params={"warehouse": WH})
    assert answer.status_code == 200, answer.text
    [item] = answer.json()["items"]
    assert item["forecast_over_lead_time"] == pytest.approx(week)
    assert item["suggested_qty"] == max(week + 25 - 100 - 30, 0)
    assert item["safety_stock"] == 25 and item["available"] == 100 and item["on_order"] == 30
    assert f"order {item['suggested_qty']}" in item["reason"]
    assert_problem(
        await client.get("/replenishment", params={"warehouse": "WH-X"}), 422, "warehouse"
    )


async def test_nightly_refresh_announces_a_class_suggestions_once(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    await setup_sku(db, "SKU-A", on_hand=40)
    await setup_sku(db, "SKU-B", on_hand=40)
    await setup_sku(db, "SKU-C", on_hand=40)
    for sku, abc in (("SKU-A", "A"), ("SKU-B", "B"), ("SKU-C", "C")):
        await backfill(client, sku, 30)
        await client.put(f"/skus/{sku}/policy", json={"abc_override": abc})

    def announced(rows: list[dict[str, Any]]) -> list[Any]:
        return [r["envelope"] for r in rows if r["envelope"].event_type == "ReplenishmentSuggested"]

    summary = await nightly_refresh(db.uow)
    assert summary.forecasts == 2  # A and B (one warehouse: fitted once each); not C
    events = announced(await db.outbox_rows())
    assert [e.payload["sku"] for e in events] == ["SKU-A"]
    payload = events[0].payload
    assert payload["warehouse"] == WH and payload["abc_class"] == "A"
    assert payload["suggested_qty"] > 0 and payload["available"] == 40
    assert payload["reason"].endswith(f"order {payload['suggested_qty']}")

    # The next night with nothing changed: fresh forecasts, no news. Refitted anyway with
    # a small change (5 of ~400 units): the same advice, no news either.
    assert (await nightly_refresh(db.uow)).forecasts == 0
    async with db.uow() as uow:
        await Inventory(uow).adjust("SKU-A", WH, -5, Change("adjustment", "damaged", "t"))
        await uow.commit()
    again = await nightly_refresh(db.uow, force=True)
    assert again.forecasts == 2 and again.announced == 0
    assert len(announced(await db.outbox_rows())) == 1

    # A longer lead time (twice the demand to cover) is a material change: announced.
    supply = {"lead_time_days": 14}
    assert (await client.put("/skus/SKU-A/supply", json=supply, headers=OPERATOR)).is_success
    third = await nightly_refresh(db.uow, force=True)
    assert third.announced == 1
    events = announced(await db.outbox_rows())
    assert len(events) == 2
    assert events[1].payload["lead_time_days"] == 14 and events[1].payload["available"] == 35
    assert events[1].payload["suggested_qty"] > 1.5 * payload["suggested_qty"]


async def test_the_app_serves_the_forecast_routes() -> None:
    paths = set(build_app().openapi()["paths"])
    assert {
        "/forecast/{sku}",
        "/forecast/refresh",
        "/promotions",
        "/replenishment",
        "/skus/{sku}/supply",
        "/sales-history/import",
    } <= paths
