"""Runs of events applied set-based end as one by one (CustomerResolved, CustomerUpdated,
StockLevelChanged, StockReserved).

The same events (orders open and closed and unknown, a buyer resolved twice with the
older answer last, one order resolved twice, a customer with a profile, one merged into
another, stock levels out of order) are applied once event by event with the one-event
handlers and once as runs with the batch handlers, on a real database; the read models
and the orders must end the same.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from oms_contracts import Envelope, Event, make_envelope
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
from order_svc.handlers import consumer_specs

T0 = datetime(2026, 11, 11, tzinfo=UTC)
SPEC = consumer_specs()[0]


def received(order_id: uuid.UUID, user: str) -> OrderReceived:
    return OrderReceived(
        order_id=order_id,
        channel="web",
        channel_order_id=f"W-{order_id.int}",
        customer=CustomerIdentity(platform_user_id=user, name="Buyer"),
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=1, unit_price=Decimal("5"))],
        currency="CNY",
        paid=False,
        shipping_address=Address(region="CN-SH", city="x"),
        received_at=T0,
    )


def resolved(order_id: uuid.UUID, user: str, customer: uuid.UUID, at: datetime) -> Event:
    return CustomerResolved(
        customer_id=customer,
        order_id=order_id,
        channel="web",
        platform_user_id=user,
        new_customer=False,
        resolved_at=at,
    )


def profile(customer: uuid.UUID, requirements: list[str], tags: list[str], at: datetime) -> Event:
    return CustomerUpdated(
        customer_id=customer,
        delivery_requirements=requirements,
        tags=tags,
        changed_fields=["tags"],
        updated_at=at,
    )


def level(sku: str, warehouse: str, available: int, at: datetime) -> Event:
    return StockLevelChanged(
        sku=sku,
        warehouse=warehouse,
        on_hand=10,
        reserved=10 - available,
        available=available,
        changed_at=at,
    )


ORDERS = [uuid.UUID(int=i + 1) for i in range(5)]
CUSTOMERS = [uuid.UUID(int=100 + i) for i in range(4)]


async def apply_one(db: MigratedDatabase, event: Event) -> None:
    envelope = make_envelope(event, producer="test")
    async with db.uow() as uow:
        uow.caused_by(envelope)
        await SPEC.handlers[event.event_type](uow, envelope, event)
        await uow.commit()


async def seed(db: MigratedDatabase) -> None:
    for n, order_id in enumerate(ORDERS[:4]):
        await apply_one(db, received(order_id, f"u-{n}"))
    async with db.engine.begin() as conn:  # one order is closed: no profile is copied
        await conn.execute(
            text("UPDATE orders SET state = 'cancelled' WHERE id = :i"), {"i": ORDERS[3]}
        )
    await apply_one(
        db,
        CustomerUpdated(
            customer_id=CUSTOMERS[0],
            delivery_requirements=["cold_chain"],
            tags=["vip"],
            changed_fields=["tags"],
            updated_at=T0,
        ),
    )
    await apply_one(
        db,
        CustomerUpdated(
            customer_id=CUSTOMERS[2],
            delivery_requirements=["invoice"],
            tags=[],
            changed_fields=["tags"],
            updated_at=T0,
        ),
    )
    await apply_one(
        db,
        CustomerMerged(
            merged_id=CUSTOMERS[1], surviving_id=CUSTOMERS[2], merged_at=T0, actor="ops-test"
        ),
    )


def run() -> list[Event]:
    later = T0 + timedelta(minutes=5)
    return [
        resolved(ORDERS[0], "u-0", CUSTOMERS[0], later),
        resolved(ORDERS[1], "u-1", CUSTOMERS[1], later),  # merged: the survivor's profile
        resolved(ORDERS[2], "u-2", CUSTOMERS[3], later),  # no profile
        resolved(ORDERS[2], "u-2", CUSTOMERS[0], later + timedelta(seconds=1)),  # again
        resolved(ORDERS[3], "u-3", CUSTOMERS[0], later),  # closed order
        resolved(ORDERS[4], "u-4", CUSTOMERS[3], later),  # an order never received
        resolved(ORDERS[0], "u-0", CUSTOMERS[3], later - timedelta(seconds=1)),  # older
        # Profiles: a newer one then an older one for a customer with open orders, one of
        # a customer merged away (stored, copied nowhere), a new customer's first one.
        profile(CUSTOMERS[0], ["fragile"], ["vip", "gold"], later + timedelta(seconds=5)),
        profile(CUSTOMERS[0], ["invoice"], [], later - timedelta(seconds=5)),
        profile(CUSTOMERS[1], ["cold_chain"], [], later),
        profile(CUSTOMERS[3], [], ["new"], later),
        level("SKU-1", "WH-A", 5, later),
        level("SKU-1", "WH-A", 7, later - timedelta(seconds=1)),  # older: ignored
        level("SKU-1", "WH-B", 3, later),
        level("SKU-2", "WH-A", 1, later),
        level("SKU-1", "WH-B", 2, later + timedelta(seconds=1)),
    ]


async def state(db: MigratedDatabase) -> dict[str, Any]:
    queries = {
        "identities": "SELECT channel, platform_user_id, customer_id, resolved_at"
        " FROM customer_identities ORDER BY 1, 2",
        "orders": "SELECT id, customer_id, state FROM orders ORDER BY 1",
        "copies": "SELECT order_id, customer_id, delivery_requirements, tags, source,"
        " profile_updated_at FROM order_customer_data ORDER BY 1",
        "profiles": "SELECT customer_id, delivery_requirements, tags, updated_at, merged_into"
        " FROM customer_profiles ORDER BY 1",
        "stock": "SELECT sku, warehouse, on_hand, reserved, available, changed_at"
        " FROM routing_stock ORDER BY 1, 2",
    }
    async with db.engine.connect() as conn:
        return {
            name: [tuple(row) for row in await conn.execute(text(sql))]
            for name, sql in queries.items()
        }


async def test_runs_applied_set_based_end_as_one_by_one(db: MigratedDatabase) -> None:
    await seed(db)
    for event in run():
        await apply_one(db, event)
    one_by_one = await state(db)

    await db.truncate()
    await seed(db)
    items: list[tuple[Envelope, Event]] = [(make_envelope(e, producer="test"), e) for e in run()]
    async with db.uow() as uow:  # runs of one type, in order, as the consumer hands them
        for _, group in itertools.groupby(items, key=lambda item: item[1].event_type):
            run_of_type = list(group)
            await SPEC.batch_handlers[run_of_type[0][1].event_type](uow, run_of_type)
        await uow.commit()
    batched = await state(db)

    assert batched == one_by_one
    # The run covers what it claims: a merged customer's survivor was copied, a closed
    # order got nothing, the newer identity answer stood.
    copies = {row[0]: row for row in one_by_one["copies"]}
    assert copies[ORDERS[1]][1] == CUSTOMERS[2]
    assert ORDERS[3] not in copies or copies[ORDERS[3]][4] != "resolved"
    identities = {row[1]: row[2] for row in one_by_one["identities"]}
    assert identities["u-0"] == CUSTOMERS[0]
    assert identities["u-2"] == CUSTOMERS[0]
    # The newer profile stood and reached the customer's open orders.
    assert copies[ORDERS[2]][3] == ["gold", "vip"] and copies[ORDERS[2]][4] == "updated"


# -- StockReserved --------------------------------------------------------------------


def paid_order(order_id: uuid.UUID, *skus: str) -> OrderReceived:
    return received(order_id, f"p-{order_id.int}").model_copy(
        update={
            "paid": True,
            "paid_at": T0,
            "lines": [
                OrderLine(line_no=n, sku=sku, qty=1, unit_price=Decimal("5"))
                for n, sku in enumerate(skus, start=1)
            ],
        }
    )


def answer(order_id: uuid.UUID, *placements: tuple[str, str]) -> Event:
    return StockReserved(
        order_id=order_id,
        lines=[
            ReservedLine(line_no=n, sku=sku, qty=1, warehouse=wh)
            for n, (sku, wh) in enumerate(placements, start=1)
        ],
        reserved_at=T0,
    )


PAID = [uuid.UUID(int=200 + i) for i in range(6)]


async def seed_paid(db: MigratedDatabase) -> None:
    await apply_one(
        db,
        WarehouseUpdated(
            code="WH-A",
            name="A",
            region="CN-SH",
            latitude=31.2,
            longitude=121.5,
            capabilities=[],
            shipping_costs={"CN-SH": Decimal("8")},
            updated_at=T0,
        ),
    )
    for sku in ("SKU-1", "SKU-2"):
        await apply_one(db, level(sku, "WH-A", 50, T0))
    for order_id in PAID[:5]:
        await apply_one(db, paid_order(order_id, "SKU-1", "SKU-2"))
    async with db.engine.begin() as conn:  # cancelled before its stock came: no change
        await conn.execute(
            text("UPDATE orders SET state = 'cancelled' WHERE id = :i"), {"i": PAID[4]}
        )


def answers_run() -> list[Event]:
    return [
        answer(PAID[0], ("SKU-1", "WH-A"), ("SKU-2", "WH-A")),
        answer(PAID[1], ("SKU-1", "WH-A"), ("SKU-2", "WH-B")),  # split where the stock is
        answer(PAID[0], ("SKU-1", "WH-A"), ("SKU-2", "WH-A")),  # answered twice
        answer(PAID[4], ("SKU-1", "WH-A"), ("SKU-2", "WH-A")),  # cancelled meanwhile
        answer(PAID[5], ("SKU-1", "WH-A")),  # an order never received
        answer(PAID[2], ("SKU-1", "WH-B"), ("SKU-2", "WH-B")),
    ]


def untimed(payload: dict[str, Any], times: set[str]) -> dict[str, Any]:
    """A payload without its clock readings (those of the transitions it carries too)."""
    kept = {k: v for k, v in payload.items() if k not in times}
    if "earlier" in kept:
        kept["earlier"] = [untimed(t, times) for t in kept["earlier"]]
    return kept


async def reserved_state(db: MigratedDatabase, since: int) -> dict[str, Any]:
    queries = {
        "orders": "SELECT id, state FROM orders ORDER BY 1",
        "lines": "SELECT order_id, line_no, warehouse FROM order_lines ORDER BY 1, 2",
        "transitions": "SELECT order_id, from_state, to_state, actor, reason"
        " FROM order_transitions ORDER BY order_id, id",
        "routes": "SELECT order_id, shipments, split, routed_at IS NOT NULL FROM order_routes"
        " ORDER BY 1",
        "clocks": "SELECT order_id, stage, ended_state, ended_at IS NOT NULL FROM order_sla"
        " ORDER BY 1, 2",
    }
    async with db.engine.connect() as conn:
        found: dict[str, Any] = {
            name: [tuple(row) for row in await conn.execute(text(sql))]
            for name, sql in queries.items()
        }
    times = {"routed_at", "confirmed_at", "changed_at"}
    found["events"] = [
        (
            row["event_type"],
            row["envelope"].causation_id,
            untimed(row["envelope"].payload, times),
        )
        for row in (await db.outbox_rows())[since:]
    ]
    return found


async def test_a_run_of_reserved_orders_ends_as_one_by_one(db: MigratedDatabase) -> None:
    envelopes = [make_envelope(e, producer="inventory-svc") for e in answers_run()]
    await seed_paid(db)
    since = len(await db.outbox_rows())
    for envelope, event in zip(envelopes, answers_run(), strict=True):
        async with db.uow() as uow:
            uow.caused_by(envelope)
            await SPEC.handlers[event.event_type](uow, envelope, event)
            await uow.commit()
    one_by_one = await reserved_state(db, since)

    await db.truncate()
    await seed_paid(db)
    since = len(await db.outbox_rows())
    async with db.uow() as uow:
        await SPEC.batch_handlers[StockReserved.event_type](
            uow, list(zip(envelopes, answers_run(), strict=True))
        )
        await uow.commit()
    batched = await reserved_state(db, since)

    for part in one_by_one:
        assert batched[part] == one_by_one[part], part
    states = dict(one_by_one["orders"])
    assert states[PAID[0]] == states[PAID[1]] == states[PAID[2]] == "routed"
    assert states[PAID[3]] == "paid" and states[PAID[4]] == "cancelled"
    assert {e[0] for e in one_by_one["events"]} >= {"OrderConfirmed", "OrderRouted"}


# -- OrderReceived --------------------------------------------------------------------

RECEIVED = [uuid.UUID(int=300 + i) for i in range(8)]


async def seed_receipts(db: MigratedDatabase) -> None:
    await seed_paid(db)  # warehouses, stock, five paid orders
    await apply_one(db, resolved(PAID[0], f"p-{PAID[0].int}", CUSTOMERS[0], T0))
    await apply_one(
        db,
        CustomerUpdated(
            customer_id=CUSTOMERS[0],
            delivery_requirements=["cold_chain"],
            tags=["vip"],
            changed_fields=["tags"],
            updated_at=T0,
        ),
    )


def receipts_run() -> list[Event]:
    known_buyer = f"p-{PAID[0].int}"
    return [
        paid_order(RECEIVED[0], "SKU-1"),
        paid_order(RECEIVED[1], "SKU-1", "SKU-2").model_copy(
            update={"customer": CustomerIdentity(platform_user_id=known_buyer, name="B")}
        ),  # a known buyer: the profile (cold chain) applies from receipt
        received(RECEIVED[2], "u-unpaid"),  # waits for its payment
        paid_order(RECEIVED[3], "SKU-404"),  # a SKU routing has no stock for: deferred
        paid_order(RECEIVED[0], "SKU-1"),  # the same order again
        paid_order(PAID[1], "SKU-1"),  # an order created before the run
        paid_order(RECEIVED[4], "SKU-2"),
    ]


async def receipt_state(db: MigratedDatabase, since: int) -> dict[str, Any]:
    queries = {
        "orders": "SELECT id, state, exception_reason, customer, delivery_requirements,"
        " paid_at IS NOT NULL FROM orders ORDER BY 1",
        "lines": "SELECT order_id, line_no, sku, qty, warehouse FROM order_lines ORDER BY 1, 2",
        "transitions": "SELECT order_id, from_state, to_state, actor, reason"
        " FROM order_transitions ORDER BY order_id, id",
        "routes": "SELECT order_id, outcome, reason, requirements, shipments, candidates"
        " FROM order_routes ORDER BY 1",
        "copies": "SELECT order_id, customer_id, delivery_requirements, tags, source"
        " FROM order_customer_data ORDER BY 1",
        "credit": "SELECT order_id, status, detail FROM credit_checks ORDER BY 1",
        "clocks": "SELECT order_id, stage, ended_state FROM order_sla ORDER BY 1, 2",
    }
    async with db.engine.connect() as conn:
        found: dict[str, Any] = {
            name: [tuple(row) for row in await conn.execute(text(sql))]
            for name, sql in queries.items()
        }
    times = {"created_at", "paid_at", "changed_at", "decided_at", "raised_at", "exception_id"}
    found["events"] = [
        (
            row["event_type"],
            row["envelope"].causation_id,
            untimed(row["envelope"].payload, times),
        )
        for row in (await db.outbox_rows())[since:]
    ]
    return found


async def test_a_run_of_received_orders_ends_as_one_by_one(db: MigratedDatabase) -> None:
    envelopes = [make_envelope(e, producer="channel-gateway") for e in receipts_run()]
    await seed_receipts(db)
    since = len(await db.outbox_rows())
    for envelope, event in zip(envelopes, receipts_run(), strict=True):
        async with db.uow() as uow:
            uow.caused_by(envelope)
            await SPEC.handlers[event.event_type](uow, envelope, event)
            await uow.commit()
    one_by_one = await receipt_state(db, since)

    await db.truncate()
    await seed_receipts(db)
    since = len(await db.outbox_rows())
    async with db.uow() as uow:
        await SPEC.batch_handlers[OrderReceived.event_type](
            uow, list(zip(envelopes, receipts_run(), strict=True))
        )
        await uow.commit()
    batched = await receipt_state(db, since)

    for part in one_by_one:
        assert batched[part] == one_by_one[part], part
    states = {row[0]: row[1] for row in one_by_one["orders"]}
    assert states[RECEIVED[0]] == states[RECEIVED[4]] == "paid"
    assert states[RECEIVED[2]] == "pending_payment"
    # The known buyer's profile applied from receipt: cold chain, which no warehouse has.
    assert states[RECEIVED[1]] == "exception"
    copies = {row[0]: row for row in one_by_one["copies"]}
    assert copies[RECEIVED[1]][4] == "receipt"


# -- StockRejected --------------------------------------------------------------------


def refusal(order_id: uuid.UUID, *lines: tuple[str, str]) -> Event:
    return StockRejected(
        order_id=order_id,
        lines=[
            RejectedLine(line_no=n, sku=sku, qty=1, reason=reason, available=0)
            for n, (sku, reason) in enumerate(lines, start=1)
        ],
        rejected_at=T0,
    )


async def seed_refusals(db: MigratedDatabase) -> None:
    await seed_paid(db)
    await apply_one(
        db,
        WarehouseUpdated(
            code="WH-B",
            name="B",
            region="CN-BJ",
            latitude=39.9,
            longitude=116.4,
            capabilities=[],
            shipping_costs={"CN-SH": Decimal("15")},
            updated_at=T0,
        ),
    )
    for sku in ("SKU-1", "SKU-2"):
        await apply_one(db, level(sku, "WH-B", 9, T0))
    # PAID[3] was refused once already: its decision remembers the attempt.
    await apply_one(db, refusal(PAID[3], ("SKU-1", "insufficient"), ("SKU-2", "insufficient")))


def refusals_run() -> list[Event]:
    return [
        refusal(PAID[0], ("SKU-1", "insufficient"), ("SKU-2", "insufficient")),  # re-routed
        refusal(PAID[1], ("SKU-1", "channel_cap"), ("SKU-2", "insufficient")),
        refusal(PAID[2], ("SKU-1", "customer_limit"), ("SKU-2", "customer_limit")),
        refusal(PAID[0], ("SKU-1", "insufficient"), ("SKU-2", "insufficient")),  # again
        refusal(PAID[4], ("SKU-1", "insufficient"), ("SKU-2", "insufficient")),  # cancelled
        refusal(PAID[5], ("SKU-1", "insufficient")),  # never received
        refusal(PAID[3], ("SKU-1", "insufficient"), ("SKU-2", "insufficient")),
    ]


async def refusal_state(db: MigratedDatabase, since: int) -> dict[str, Any]:
    found = await receipt_state(db, since)
    async with db.engine.connect() as conn:
        found["attempts"] = [
            tuple(r)
            for r in await conn.execute(
                text("SELECT order_id, attempts, excluded, outcome FROM order_routes ORDER BY 1")
            )
        ]
    return found


async def test_a_run_of_refusals_ends_as_one_by_one(db: MigratedDatabase) -> None:
    envelopes = [make_envelope(e, producer="inventory-svc") for e in refusals_run()]
    await seed_refusals(db)
    since = len(await db.outbox_rows())
    for envelope, event in zip(envelopes, refusals_run(), strict=True):
        async with db.uow() as uow:
            uow.caused_by(envelope)
            await SPEC.handlers[event.event_type](uow, envelope, event)
            await uow.commit()
    one_by_one = await refusal_state(db, since)

    await db.truncate()
    await seed_refusals(db)
    since = len(await db.outbox_rows())
    async with db.uow() as uow:
        await SPEC.batch_handlers[StockRejected.event_type](
            uow, list(zip(envelopes, refusals_run(), strict=True))
        )
        await uow.commit()
    batched = await refusal_state(db, since)

    for part in one_by_one:
        assert batched[part] == one_by_one[part], part
    states = {row[0]: (row[1], row[2]) for row in one_by_one["orders"]}
    assert states[PAID[1]][0] == states[PAID[2]][0] == "exception"
    assert "customer_limit" in (states[PAID[2]][1] or "")
    attempts = {row[0]: row[1] for row in one_by_one["attempts"]}
    assert attempts[PAID[0]] == 3  # re-routed twice in the run
    assert attempts[PAID[3]] == 3  # once before the run, once in it
    assert any(e[0] == "OrderPaid" for e in one_by_one["events"])
