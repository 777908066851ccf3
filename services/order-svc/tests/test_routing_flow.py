"""Routing and customer data in the order flow, on a real PostgreSQL: events
are applied by the production consumers on a real broker, the API is called over ASGI."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from oms_contracts import Event
from oms_contracts.events import (
    Address,
    CustomerIdentity,
    CustomerMerged,
    CustomerResolved,
    CustomerUpdated,
    OrderLine,
    OrderReceived,
    RejectedLine,
    ReservedLine,
    StockLevelChanged,
    StockRejected,
    StockReserved,
    WarehouseUpdated,
)
from oms_servicekit.testing import MigratedDatabase
from order_svc.adapters.credit_bureau import CreditDecision
from order_svc.adapters.routing_repository import RoutingRepository
from order_svc.credit import CreditConfig, apply_decision
from order_svc.routing import RoutingConfig

T0 = datetime(2026, 11, 1, tzinfo=UTC)


async def apply(db: MigratedDatabase, event: Event, routing: RoutingConfig | None = None) -> None:
    await db.deliver(event, routing=routing)


async def events_of(db: MigratedDatabase, key: str, event_type: str) -> list[dict[str, Any]]:
    return [
        row["envelope"].payload
        for row in await db.outbox_rows()
        if row["event_type"] == event_type and row["key"] == key
    ]


async def warehouses(db: MigratedDatabase) -> None:
    for code, region, lat, lon, caps, costs in (
        ("WH-SH", "CN-SH", 31.23, 121.47, ["cold_chain"], {"CN-SH": "8", "CN-BJ": "18"}),
        ("WH-BJ", "CN-BJ", 39.90, 116.40, [], {"CN-SH": "15", "CN-BJ": "6"}),
    ):
        await apply(
            db,
            WarehouseUpdated(
                code=code,
                name=code,
                region=region,
                latitude=lat,
                longitude=lon,
                capabilities=caps,
                shipping_costs={k: Decimal(v) for k, v in costs.items()},
                updated_at=T0,
            ),
        )


async def stock(db: MigratedDatabase, sku: str, warehouse: str, available: int) -> None:
    await apply(
        db,
        StockLevelChanged(
            sku=sku,
            warehouse=warehouse,
            on_hand=available,
            reserved=0,
            available=available,
            changed_at=datetime.now(UTC),
        ),
    )


def received(
    *skus: str,
    region: str = "CN-SH",
    requirements: list[str] | None = None,
    user: str = "u-1",
    channel: str = "web",
) -> OrderReceived:
    return OrderReceived(
        order_id=uuid.uuid4(),
        channel=channel,
        channel_order_id=f"W-{uuid.uuid4().hex[:8]}",
        customer=CustomerIdentity(platform_user_id=user, name="Li Lei"),
        lines=[
            OrderLine(line_no=n, sku=sku, qty=1, unit_price=Decimal("9.90"))
            for n, sku in enumerate(skus, start=1)
        ],
        currency="CNY",
        paid=True,
        paid_at=datetime.now(UTC),
        shipping_address=Address(region=region, city="x"),
        delivery_requirements=requirements or [],
        notes="ring twice",
        received_at=datetime.now(UTC),
    )


async def place(
    db: MigratedDatabase, event: OrderReceived, routing: RoutingConfig | None = None
) -> str:
    await apply(db, event, routing)
    return str(event.order_id)


async def paid_lines(db: MigratedDatabase, order_id: str) -> list[list[dict[str, Any]]]:
    return [e["lines"] for e in await events_of(db, order_id, "OrderPaid")]


async def reserve(
    db: MigratedDatabase, order_id: str, placement: dict[int, tuple[str, str]], **kw: Any
) -> None:
    await apply(
        db,
        StockReserved(
            order_id=uuid.UUID(order_id),
            lines=[
                ReservedLine(line_no=n, sku=sku, qty=1, warehouse=wh)
                for n, (sku, wh) in placement.items()
            ],
            reserved_at=datetime.now(UTC),
        ),
        **kw,
    )


# -- read models ------------------------------------------------------------------------


async def test_warehouses_and_stock_are_kept_and_a_late_older_event_changes_nothing(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    await warehouses(db)
    older = WarehouseUpdated(
        code="WH-SH",
        name="old name",
        region="CN-SH",
        latitude=0,
        longitude=0,
        updated_at=T0 - timedelta(days=1),
    )
    await apply(db, older)
    listed = (await api.get("/routing/warehouses")).json()
    assert [(w["code"], w["name"], w["capabilities"]) for w in listed] == [
        ("WH-BJ", "WH-BJ", []),
        ("WH-SH", "WH-SH", ["cold_chain"]),
    ]
    assert listed[1]["shipping_costs"] == {"CN-SH": "8", "CN-BJ": "18"}

    now = datetime.now(UTC)
    for available, at in ((9, now), (1, now - timedelta(seconds=5))):
        level = StockLevelChanged(
            sku="A",
            warehouse="WH-SH",
            on_hand=available,
            reserved=0,
            available=available,
            changed_at=at,
        )
        await apply(db, level)
    async with db.uow() as uow:
        view = await RoutingRepository(uow.session).stock(["A", "B"])
    assert dict(view.available) == {("A", "WH-SH"): 9}
    assert view.known("A") and not view.known("B")


# -- routing before the reservation ---------------------------------------------------


async def test_a_paid_order_is_routed_before_its_stock_is_requested_and_shown_on_the_order(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    await warehouses(db)
    await stock(db, "A", "WH-SH", 5)
    await stock(db, "A", "WH-BJ", 5)
    order_id = await place(db, received("A", region="CN-BJ"))

    assert [ln["warehouse"] for ln in (await paid_lines(db, order_id))[0]] == ["WH-BJ"]
    order = (await api.get(f"/orders/{order_id}")).json()
    assert order["state"] == "paid" and order["lines"][0]["warehouse"] == "WH-BJ"
    routing = order["routing"]
    assert routing["outcome"] == "routed" and routing["split"] is False
    assert [s["warehouse"] for s in routing["shipments"]] == ["WH-BJ"]
    assert [c["warehouse"] for c in routing["candidates"]] == ["WH-BJ", "WH-SH"]
    best, other = routing["candidates"]
    assert best["score"] > other["score"] and best["distance_km"] == 0.0
    assert Decimal(best["shipping_cost"]) == Decimal("6")
    assert routing["routed_at"] is None

    await reserve(db, order_id, {1: ("A", "WH-BJ")})
    order = (await api.get(f"/orders/{order_id}")).json()
    assert order["state"] == "routed"  # the state a reserved order rests in by default
    assert [(h["to_state"], h["actor"]) for h in order["history"]][-3:] == [
        ("reserved", "rule:reserve_when_credit_ok"),
        ("confirmed", "rule:confirm_reserved"),
        ("routed", "rule:route_confirmed"),
    ]
    assert order["history"][-1]["reason"] == "routed: WH-BJ"
    assert order["routing"]["routed_at"] is not None
    [routed] = await events_of(db, order_id, "OrderRouted")
    assert routed["split"] is False
    assert routed["shipments"] == [
        {
            "warehouse": "WH-BJ",
            "line_nos": [1],
            "score": best["score"],
            "distance_km": 0.0,
            "shipping_cost": "6",
        }
    ]


async def test_a_routed_order_rests_in_routed_until_an_operator_hands_it_to_the_warehouse(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    await warehouses(db)
    await stock(db, "A", "WH-SH", 5)
    order_id = await place(db, received("A"))
    await reserve(db, order_id, {1: ("A", "WH-SH")})
    order = (await api.get(f"/orders/{order_id}")).json()
    assert [h["to_state"] for h in order["history"]][-3:] == ["reserved", "confirmed", "routed"]
    assert order["history"][-1]["reason"] == "routed: WH-SH"
    assert order["state"] == "routed"  # release_to_picking ships disabled
    # An operator hands it to the warehouse from there.
    r = await api.post(f"/orders/{order_id}/pick", headers={"X-Operator": "alice"})
    assert r.status_code == 200 and r.json()["state"] == "picking"


async def test_an_order_split_over_two_warehouses_shows_both_parcels_on_its_pick_list(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    await warehouses(db)
    await stock(db, "A", "WH-SH", 5)
    await stock(db, "B", "WH-BJ", 5)
    order_id = await place(db, received("A", "B"))
    assert [ln["warehouse"] for ln in (await paid_lines(db, order_id))[0]] == ["WH-SH", "WH-BJ"]

    await reserve(db, order_id, {1: ("A", "WH-SH"), 2: ("B", "WH-BJ")})
    [routed] = await events_of(db, order_id, "OrderRouted")
    assert routed["split"] is True
    assert [(s["warehouse"], s["line_nos"]) for s in routed["shipments"]] == [
        ("WH-BJ", [2]),
        ("WH-SH", [1]),
    ]
    pick = (await api.get(f"/orders/{order_id}/picklist")).json()
    assert [(p["warehouse"], [ln["sku"] for ln in p["lines"]]) for p in pick["parcels"]] == [
        ("WH-BJ", ["B"]),
        ("WH-SH", ["A"]),
    ]
    assert pick["notes"] == "ring twice"


async def test_a_channel_that_does_not_allow_splits_leaves_the_choice_to_inventory(
    db: MigratedDatabase,
) -> None:
    await warehouses(db)
    await stock(db, "A", "WH-SH", 5)
    await stock(db, "B", "WH-BJ", 5)
    config = RoutingConfig(split_by_channel={"live": False})
    order_id = await place(db, received("A", "B", channel="live"), config)
    assert [ln["warehouse"] for ln in (await paid_lines(db, order_id))[0]] == [None, None]


async def test_a_cold_chain_order_without_a_cold_chain_warehouse_in_stock_is_an_exception(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    await warehouses(db)
    await stock(db, "A", "WH-BJ", 5)
    await stock(db, "A", "WH-SH", 0)
    order_id = await place(db, received("A", requirements=["cold_chain"]))

    order = (await api.get(f"/orders/{order_id}")).json()
    assert order["state"] == "exception"
    assert order["exception_reason"].startswith("routing_impossible (cold_chain: ")
    assert order["routing"]["outcome"] == "impossible"
    assert await paid_lines(db, order_id) == []  # no stock is requested


async def test_with_no_warehouse_known_the_order_flows_as_before(db: MigratedDatabase) -> None:
    order_id = await place(db, received("A"))
    assert [ln["warehouse"] for ln in (await paid_lines(db, order_id))[0]] == [None]


async def test_a_pinned_warehouse_that_lacks_stock_is_routed_around_then_inventory_picks(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    await warehouses(db)
    await stock(db, "A", "WH-SH", 5)
    await stock(db, "A", "WH-BJ", 5)
    config = RoutingConfig(max_attempts=2)
    order_id = await place(db, received("A"), config)

    def refused() -> StockRejected:
        return StockRejected(
            order_id=uuid.UUID(order_id),
            lines=[RejectedLine(line_no=1, sku="A", qty=1, reason="insufficient", available=0)],
            rejected_at=datetime.now(UTC),
        )

    await apply(db, refused(), config)  # WH-SH refused: try WH-BJ
    await apply(db, refused(), config)  # WH-BJ refused too: inventory picks
    warehouses_asked = [
        [ln["warehouse"] for ln in lines] for lines in await paid_lines(db, order_id)
    ]
    assert warehouses_asked == [["WH-SH"], ["WH-BJ"], [None]]
    order = (await api.get(f"/orders/{order_id}")).json()
    assert order["state"] == "paid"
    assert order["routing"]["excluded"] == ["WH-BJ", "WH-SH"]
    assert order["routing"]["outcome"] == "deferred"

    await apply(db, refused(), config)  # an unpinned refusal is final
    order = (await api.get(f"/orders/{order_id}")).json()
    assert order["state"] == "exception"
    assert order["exception_reason"] == "stock_rejected (A: insufficient)"


async def test_a_cold_chain_order_refused_by_the_only_cold_chain_warehouse_is_impossible(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    await warehouses(db)
    await stock(db, "A", "WH-SH", 5)
    order_id = await place(db, received("A", requirements=["cold_chain"]))
    await apply(
        db,
        StockRejected(
            order_id=uuid.UUID(order_id),
            lines=[RejectedLine(line_no=1, sku="A", qty=1, reason="insufficient", available=0)],
            rejected_at=datetime.now(UTC),
        ),
    )
    order = (await api.get(f"/orders/{order_id}")).json()
    assert order["state"] == "exception"
    assert order["exception_reason"].startswith("routing_impossible (cold_chain: not enough")


async def test_an_order_leaving_the_credit_check_is_routed_before_its_stock_is_requested(
    db: MigratedDatabase,
) -> None:
    await warehouses(db)
    await stock(db, "A", "WH-BJ", 5)
    event = received("A", region="CN-BJ")
    await db.deliver(event, credit=CreditConfig(True, 30.0))
    assert await paid_lines(db, str(event.order_id)) == []
    async with db.uow() as uow:
        assert await apply_decision(
            uow, event.order_id, CreditDecision("approved"), expected=["pending"]
        )
        await uow.commit()
    assert [ln["warehouse"] for ln in (await paid_lines(db, str(event.order_id)))[0]] == ["WH-BJ"]


# -- customer data on orders ----------------------------------------------------------


def updated(customer_id: uuid.UUID, requirements: list[str], tags: list[str]) -> CustomerUpdated:
    return CustomerUpdated(
        customer_id=customer_id,
        changed_fields=["delivery_requirements"],
        delivery_requirements=requirements,
        tags=tags,
        updated_at=datetime.now(UTC),
    )


def resolved(order_id: str, customer_id: uuid.UUID, user: str = "u-1") -> CustomerResolved:
    return CustomerResolved(
        customer_id=customer_id,
        order_id=uuid.UUID(order_id),
        channel="web",
        platform_user_id=user,
        new_customer=False,
        resolved_at=datetime.now(UTC),
    )


async def test_customer_requirements_reach_open_orders_and_the_next_order_at_receipt(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    await warehouses(db)
    await stock(db, "A", "WH-SH", 5)
    await stock(db, "A", "WH-BJ", 5)
    customer = uuid.uuid4()
    first = await place(db, received("A", region="CN-BJ"))
    await apply(db, resolved(first, customer))
    shipped = await place(db, received("A", region="CN-BJ"))
    await apply(db, resolved(shipped, customer))
    await reserve(db, shipped, {1: ("A", "WH-BJ")})
    for action, body in (("pick", None), ("ship", {"carrier": "SF", "tracking_number": "1"})):
        r = await api.post(f"/orders/{shipped}/{action}", json=body, headers={"X-Operator": "a"})
        assert r.status_code == 200, r.text

    await apply(db, updated(customer, ["cold_chain"], ["cold_chain_sensitive", "vip"]))

    pick = (await api.get(f"/orders/{first}/picklist")).json()
    assert pick["delivery_requirements"] == ["cold_chain"]
    assert pick["order_requirements"] == [] and pick["customer_requirements"] == ["cold_chain"]
    assert pick["tags"] == ["cold_chain_sensitive", "vip"]
    assert pick["customer_data"]["source"] == "updated"
    assert pick["customer_data"]["customer_id"] == str(customer)
    order = (await api.get(f"/orders/{first}")).json()
    assert order["customer_requirements"] == ["cold_chain"]
    assert order["delivery_requirements"] == []  # the order's own, as the channel sent them
    # A shipped order is no longer changed.
    assert (await api.get(f"/orders/{shipped}")).json()["customer_requirements"] == []

    # The next order of the same buyer is cold chain from its receipt: routed to WH-SH
    # although it goes to Beijing, and announced as cold chain to customer-svc.
    nxt = await place(db, received("A", region="CN-BJ"))
    assert [ln["warehouse"] for ln in (await paid_lines(db, nxt))[0]] == ["WH-SH"]
    [created] = await events_of(db, nxt, "OrderCreated")
    assert created["delivery_requirements"] == ["cold_chain"]
    pick = (await api.get(f"/orders/{nxt}/picklist")).json()
    assert pick["customer_data"]["source"] == "receipt"
    assert pick["delivery_requirements"] == ["cold_chain"]
    # A stale CustomerUpdated delivered late changes nothing.
    stale = updated(customer, [], [])
    stale = stale.model_copy(update={"updated_at": datetime.now(UTC) - timedelta(hours=1)})
    await apply(db, stale)
    assert (await api.get(f"/orders/{first}/picklist")).json()["tags"] == [
        "cold_chain_sensitive",
        "vip",
    ]


async def test_merged_customers_orders_follow_the_surviving_customer(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    survivor, merged = uuid.uuid4(), uuid.uuid4()
    await apply(db, updated(survivor, ["signature"], ["vip"]))
    order_id = await place(db, received("A", user="u-merged"))
    await apply(db, resolved(order_id, merged, user="u-merged"))
    await apply(
        db,
        CustomerMerged(
            surviving_id=survivor, merged_id=merged, actor="alice", merged_at=datetime.now(UTC)
        ),
    )
    order = (await api.get(f"/orders/{order_id}")).json()
    assert order["customer_id"] == str(survivor)
    assert order["customer_requirements"] == ["signature"]
    assert order["customer_data"]["source"] == "merged"
    # The merged identity now leads to the survivor's profile at receipt.
    nxt = await place(db, received("A", user="u-merged"))
    assert (await api.get(f"/orders/{nxt}")).json()["customer_tags"] == ["vip"]


async def test_the_pick_list_of_an_unknown_order_is_404(api: httpx.AsyncClient) -> None:
    r = await api.get(f"/orders/{uuid.uuid4()}/picklist")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
