"""``GET /reservations`` on a real database: only open reservations, each order with its
open lines, paged by order id with a cursor that never splits an order; bad input is a
422 problem+json naming the field."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from inventory_svc.adapters.stock_repository import Change
from inventory_svc.api.reservation_routes import router
from inventory_svc.bootstrap import SERVICE
from inventory_svc.inventory import Inventory
from oms_contracts.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPaid,
    OrderShipped,
    ShipmentLine,
)
from oms_servicekit.http import create_app
from oms_servicekit.problems import PROBLEM_JSON
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase


@pytest.fixture
async def client(db: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    async with db.uow() as uow:
        inv = Inventory(uow)
        for wh in ("WH-1", "WH-2"):
            await inv.repo.add_warehouse(
                {"code": wh, "name": wh, "region": "CN-SH", "latitude": 31.2, "longitude": 121.5}
            )
        for sku in ("TEA", "CUP"):
            await inv.repo.add_sku({"sku": sku, "name": sku})
            await inv.receive(sku, "WH-1", 100, Change("receipt", "test", "tester"))
        await uow.commit()
    runtime = DatabaseOnlyRuntime(db, producer=SERVICE)
    app = create_app(title=SERVICE, runtime=runtime, routers=[router])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
        yield client


def paid(*lines: tuple[str, int], channel: str = "web") -> OrderPaid:
    order_lines = [
        OrderLine(line_no=n, sku=sku, qty=qty, unit_price=Decimal("10"))
        for n, (sku, qty) in enumerate(lines, start=1)
    ]
    return OrderPaid(
        order_id=uuid.uuid4(),
        channel=channel,
        lines=order_lines,
        currency="CNY",
        total=sum((ln.unit_price * ln.qty for ln in order_lines), Decimal(0)),
        paid_at=datetime.now(UTC),
    )


async def reserve(db: MigratedDatabase, *lines: tuple[str, int], channel: str = "web") -> OrderPaid:
    event = paid(*lines, channel=channel)
    emitted = await db.deliver(event)
    assert "StockReserved" in [e.event_type for e in emitted]
    return event


async def all_pages(client: httpx.AsyncClient, limit: int) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"status": "open", "limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/reservations", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_open_reservations_are_paged_by_order_with_their_lines(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    orders = [await reserve(db, ("TEA", 2), ("CUP", 1)) for _ in range(5)]
    live = await reserve(db, ("TEA", 3), channel="live")

    pages = await all_pages(client, limit=2)

    assert [len(p) for p in pages] == [2, 2, 2]
    items = [item for page in pages for item in page]
    ids = [item["order_id"] for item in items]
    assert ids == sorted(str(o.order_id) for o in [*orders, live])  # each once, in order
    by_id = {item["order_id"]: item for item in items}
    first = by_id[str(orders[0].order_id)]
    assert first["channel"] == "web"
    assert first["lines"] == [
        {"line_no": 1, "sku": "TEA", "qty": 2, "warehouse": "WH-1"},
        {"line_no": 2, "sku": "CUP", "qty": 1, "warehouse": "WH-1"},
    ]
    assert first["reserved_at"] <= first["changed_at"] < first["expires_at"]
    assert by_id[str(live.order_id)]["channel"] == "live"


async def test_released_and_shipped_reservations_are_not_listed(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    kept = await reserve(db, ("TEA", 1))
    cancelled = await reserve(db, ("TEA", 1))
    shipped = await reserve(db, ("TEA", 1), ("CUP", 1))
    half_shipped = await reserve(db, ("TEA", 1), ("CUP", 2))
    now = datetime.now(UTC)
    await db.deliver(
        OrderCancelled(
            order_id=cancelled.order_id,
            channel="web",
            reason="buyer asked",
            actor="buyer",
            cancelled_at=now,
        )
    )
    for event, line_nos in ((shipped, set()), (half_shipped, {1})):
        await db.deliver(
            OrderShipped(
                order_id=event.order_id,
                channel="web",
                carrier="SF",
                tracking_number="SF1",
                shipped_at=now,
                # No lines: the whole order left; some lines: only those.
                lines=[
                    ShipmentLine(line_no=ln.line_no, sku=ln.sku, qty=ln.qty, warehouse="WH-1")
                    for ln in event.lines
                    if ln.line_no in line_nos
                ],
            )
        )

    [page] = await all_pages(client, limit=100)

    assert {item["order_id"]: [ln["line_no"] for ln in item["lines"]] for item in page} == {
        str(kept.order_id): [1],
        str(half_shipped.order_id): [2],  # only the line still held
    }


async def test_a_confirmed_order_is_listed_with_no_expiry(
    db: MigratedDatabase, client: httpx.AsyncClient
) -> None:
    """Its stock is held until it ships or is cancelled: ``expires_at`` is null."""
    confirmed, unconfirmed = await reserve(db, ("TEA", 1)), await reserve(db, ("CUP", 1))
    await db.deliver(
        OrderConfirmed(order_id=confirmed.order_id, channel="web", confirmed_at=datetime.now(UTC))
    )

    [page] = await all_pages(client, limit=100)

    expiry = {item["order_id"]: item["expires_at"] for item in page}
    assert expiry[str(confirmed.order_id)] is None
    assert expiry[str(unconfirmed.order_id)] is not None


async def test_an_empty_inventory_answers_one_empty_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/reservations")
    assert r.status_code == 200, r.text
    assert r.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "released"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 5001}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "aWQ6MTI="}, "cursor"),  # a ledger cursor ("id:12")
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    r = await client.get("/reservations", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    body = r.json()
    assert field in {body.get("field"), *(e.get("field") for e in body.get("errors", []))}, body
