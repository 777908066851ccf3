"""A SKU's cap per customer (flash sales), on a real PostgreSQL database (events
through the production consumers on a real broker).

What must hold: a buyer's order that would pass the cap is refused as a whole with
``customer_limit`` and what the buyer has left, changing nothing; other buyers are not
affected; a release gives the units back, a shipment keeps them counted; an order
without a buyer is not capped; and concurrent orders of one buyer never pass the cap.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from inventory_svc.adapters.stock_repository import Change
from inventory_svc.adapters.tables import buyer_purchases, reservations, stock
from inventory_svc.api.routes import router
from inventory_svc.bootstrap import SERVICE
from inventory_svc.domain.policy import customer_left, within_customer_cap
from inventory_svc.inventory import Inventory
from oms_contracts import Envelope
from oms_contracts.events import (
    OrderCancelled,
    OrderLine,
    OrderPaid,
    OrderShipped,
    RejectedLine,
    ShipmentLine,
    StockRejected,
    StockReserved,
)
from oms_servicekit.http import create_app
from oms_servicekit.problems import PROBLEM_JSON
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase

ANA = "a" * 32
BO = "b" * 32
WAREHOUSES = ("WH-1", "WH-2", "WH-3")


async def setup_sku(
    db: MigratedDatabase, sku: str, per_warehouse: int, max_per_customer: int | None
) -> None:
    """``per_warehouse`` units of ``sku`` in each warehouse, and its cap per customer."""
    async with db.uow() as uow:
        inv = Inventory(uow)
        for wh in WAREHOUSES:
            await inv.repo.add_warehouse(
                {"code": wh, "name": wh, "region": "CN-SH", "latitude": 31.2, "longitude": 121.5}
            )
        await inv.repo.add_sku({"sku": sku, "name": sku})
        for wh in WAREHOUSES:
            await inv.receive(sku, wh, per_warehouse, Change("receipt", "test", "tester"))
        await uow.commit()
    await set_cap(db, sku, max_per_customer)


async def set_cap(db: MigratedDatabase, sku: str, max_per_customer: int | None) -> None:
    async with db.uow() as uow:
        await Inventory(uow).put_policy(
            sku,
            {
                "safety_stock": 0,
                "channel_caps": {},
                "pause_channels": [],
                "abc_override": None,
                "max_per_customer": max_per_customer,
            },
        )
        await uow.commit()


def paid(
    *lines: tuple[str, int],
    buyer: str | None = ANA,
    channel: str = "live",
    warehouse: str | None = None,
) -> OrderPaid:
    order_lines = [
        OrderLine(line_no=n, sku=sku, qty=qty, unit_price=Decimal("10"), warehouse=warehouse)
        for n, (sku, qty) in enumerate(lines, start=1)
    ]
    return OrderPaid(
        order_id=uuid.uuid4(),
        channel=channel,
        lines=order_lines,
        currency="CNY",
        total=sum((ln.unit_price * ln.qty for ln in order_lines), Decimal(0)),
        paid_at=datetime.now(UTC),
        buyer=buyer,
    )


async def answer(db: MigratedDatabase, event: OrderPaid) -> StockReserved | StockRejected:
    """The one reservation answer the handler emitted for ``event``."""
    emitted = await db.deliver(event)
    [envelope] = [e for e in emitted if e.event_type in {"StockReserved", "StockRejected"}]
    return _answer_of(envelope)


def _answer_of(envelope: Envelope) -> StockReserved | StockRejected:
    if envelope.event_type == "StockReserved":
        return StockReserved.model_validate(envelope.payload)
    return StockRejected.model_validate(envelope.payload)


async def held(db: MigratedDatabase) -> dict[tuple[str, str], int]:
    """(sku, buyer) -> units counted against the buyer."""
    async with db.session_factory() as s:
        rows = await s.execute(select(buyer_purchases))
    return {(r.sku, r.buyer): r.qty for r in rows}


async def reserved_units(db: MigratedDatabase, sku: str) -> int:
    async with db.session_factory() as s:
        rows = await s.execute(select(stock.c.reserved).where(stock.c.sku == sku))
    return sum(rows.scalars())


async def open_reservations(db: MigratedDatabase) -> list[dict[str, Any]]:
    async with db.session_factory() as s:
        rows = await s.execute(select(reservations).where(reservations.c.state == "reserved"))
    return [dict(r._mapping) for r in rows]


def cancelled(order: OrderPaid) -> OrderCancelled:
    return OrderCancelled(
        order_id=order.order_id,
        channel=order.channel,
        reason="buyer asked",
        actor="buyer",
        cancelled_at=datetime.now(UTC),
    )


def test_a_buyer_may_take_up_to_the_cap_and_what_is_left_is_never_negative() -> None:
    assert within_customer_cap(2, 0, 2) and not within_customer_cap(2, 0, 3)
    assert within_customer_cap(2, 1, 1) and not within_customer_cap(2, 2, 1)
    assert within_customer_cap(None, 10**6, 10**6)  # no cap
    assert customer_left(2, 0) == 2 and customer_left(2, 2) == 0 and customer_left(2, 5) == 0
    assert customer_left(None, 7) is None


async def test_an_order_over_the_buyers_cap_is_refused_and_other_buyers_are_not(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "FLASH", 10, max_per_customer=3)

    assert isinstance(await answer(db, paid(("FLASH", 2))), StockReserved)
    refused = await answer(db, paid(("FLASH", 2)))
    reserved_before = await reserved_units(db, "FLASH")

    assert isinstance(refused, StockRejected)
    assert refused.lines == [
        RejectedLine(line_no=1, sku="FLASH", qty=2, reason="customer_limit", available=1)
    ]
    assert reserved_before == 2  # nothing reserved for the refused order
    assert isinstance(await answer(db, paid(("FLASH", 3), buyer=BO)), StockReserved)
    assert isinstance(await answer(db, paid(("FLASH", 1))), StockReserved)  # exactly the cap
    assert await held(db) == {("FLASH", ANA): 3, ("FLASH", BO): 3}
    assert await reserved_units(db, "FLASH") == 6


async def test_a_first_order_larger_than_the_cap_is_refused_and_counts_nothing(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "FLASH", 10, max_per_customer=2)

    refused = await answer(db, paid(("FLASH", 3)))

    assert isinstance(refused, StockRejected)
    assert [(ln.reason, ln.available) for ln in refused.lines] == [("customer_limit", 2)]
    assert await held(db) == {}
    assert await open_reservations(db) == []


async def test_the_whole_order_is_refused_when_one_sku_passes_the_cap(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "FLASH", 10, max_per_customer=1)
    await setup_sku(db, "PLAIN", 10, max_per_customer=None)

    refused = await answer(db, paid(("PLAIN", 1), ("FLASH", 1), ("FLASH", 1)))

    assert isinstance(refused, StockRejected)
    # The order's lines of one SKU count together: both FLASH lines are refused.
    assert [(ln.line_no, ln.reason, ln.available) for ln in refused.lines] == [
        (2, "customer_limit", 1),
        (3, "customer_limit", 1),
    ]
    assert await reserved_units(db, "PLAIN") == 0
    assert await reserved_units(db, "FLASH") == 0
    assert await held(db) == {}


async def test_cancelling_gives_the_allowance_back_and_shipping_keeps_it(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "FLASH", 10, max_per_customer=1)
    first = paid(("FLASH", 1))
    assert isinstance(await answer(db, first), StockReserved)

    await db.deliver(cancelled(first))

    assert await held(db) == {("FLASH", ANA): 0}
    second = paid(("FLASH", 1))
    reserved = await answer(db, second)
    assert isinstance(reserved, StockReserved)
    [line] = reserved.lines
    shipped = OrderShipped(
        order_id=second.order_id,
        channel=second.channel,
        carrier="SF",
        tracking_number="SF1",
        lines=[ShipmentLine(line_no=1, sku="FLASH", qty=1, warehouse=line.warehouse)],
        shipped_at=datetime.now(UTC),
    )
    await db.deliver(shipped)
    # A cancel arriving after the shipment releases nothing, so gives nothing back.
    await db.deliver(cancelled(second))

    assert await held(db) == {("FLASH", ANA): 1}
    refused = await answer(db, paid(("FLASH", 1)))
    assert isinstance(refused, StockRejected)
    assert [(ln.reason, ln.available) for ln in refused.lines] == [("customer_limit", 0)]


async def test_units_reserved_before_the_cap_was_set_are_not_given_back_to_it(
    db: MigratedDatabase,
) -> None:
    """Only what was counted is given back: a release of an order reserved while the SKU
    had no cap must not free the allowance an order counted after it."""
    await setup_sku(db, "FLASH", 10, max_per_customer=None)
    before_cap = paid(("FLASH", 1))
    assert isinstance(await answer(db, before_cap), StockReserved)
    await set_cap(db, "FLASH", 1)
    assert isinstance(await answer(db, paid(("FLASH", 1))), StockReserved)

    await db.deliver(cancelled(before_cap))

    assert await held(db) == {("FLASH", ANA): 1}
    assert isinstance(await answer(db, paid(("FLASH", 1))), StockRejected)


async def test_an_order_without_a_buyer_is_not_capped(db: MigratedDatabase) -> None:
    await setup_sku(db, "FLASH", 10, max_per_customer=1)

    assert isinstance(await answer(db, paid(("FLASH", 3), buyer=None)), StockReserved)
    assert await held(db) == {}
    [row] = await open_reservations(db)
    assert row["buyer"] is None


async def test_concurrent_orders_of_one_buyer_never_pass_the_cap(db: MigratedDatabase) -> None:
    """24 orders of one buyer at once, spread over three warehouses and two channels so
    that the buyer's count is the only row they all contend on: exactly 5 get through."""
    await setup_sku(db, "FLASH", 100, max_per_customer=5)
    orders = [
        paid(("FLASH", 1), channel=("live", "app")[i % 2], warehouse=WAREHOUSES[i % 3])
        for i in range(24)
    ]

    # One burst to two instances of the consumer, whose transactions contend.
    answers = [
        _answer_of(e)
        for e in await db.deliver_many(orders, replicas=2)
        if e.event_type in {"StockReserved", "StockRejected"}
    ]
    assert len(answers) == len(orders)

    reserved = [a for a in answers if isinstance(a, StockReserved)]
    rejected = [a for a in answers if isinstance(a, StockRejected)]
    assert (len(reserved), len(rejected)) == (5, 19)
    assert {(ln.reason, ln.available) for a in rejected for ln in a.lines} == {
        ("customer_limit", 0)
    }
    assert await held(db) == {("FLASH", ANA): 5}
    assert await reserved_units(db, "FLASH") == 5
    assert {r["buyer"] for r in await open_reservations(db)} == {ANA}


# -- the policy over HTTP ----------------------------------------------------------------


@pytest.fixture
async def client(database: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    await database.truncate()
    runtime = DatabaseOnlyRuntime(database, producer=SERVICE)
    app = create_app(title=SERVICE, runtime=runtime, routers=[router])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
        r = await client.post("/skus", json={"sku": "FLASH", "name": "Tea", "attributes": {}})
        assert r.status_code == 201, r.text
        yield client


async def test_the_policy_sets_and_shows_the_cap_per_customer(client: httpx.AsyncClient) -> None:
    r = await client.put("/skus/FLASH/policy", json={"max_per_customer": 2})
    assert r.status_code == 200, r.text
    assert r.json()["max_per_customer"] == 2
    assert (await client.get("/skus/FLASH/policy")).json()["max_per_customer"] == 2

    r = await client.put("/skus/FLASH/policy", json={})  # not given: no cap
    assert r.status_code == 200, r.text
    assert r.json()["max_per_customer"] is None


@pytest.mark.parametrize("bad", [0, -1, 1_000_001, "two"])
async def test_a_cap_per_customer_out_of_range_is_refused_naming_the_field(
    client: httpx.AsyncClient, bad: object
) -> None:
    assert (await client.put("/skus/FLASH/policy", json={"max_per_customer": 3})).status_code == 200

    r = await client.put("/skus/FLASH/policy", json={"max_per_customer": bad})

    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    body = r.json()
    fields = {body.get("field"), *(e.get("field") for e in body.get("errors", []))}
    assert "max_per_customer" in fields, body
    assert (await client.get("/skus/FLASH/policy")).json()["max_per_customer"] == 3
