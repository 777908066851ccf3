"""The order watchdog on a real PostgreSQL: no order waits forever on another service.

No broker: what the watchdog sends is read from the outbox, and inventory's answers are
applied with the consumer's own handler. The watchdog is run the way the composition
root schedules it (the job function, under the exclusive job lock), with its own clock,
so "two minutes later" is a chosen instant, not a sleep.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select, text

from oms_contracts.events import (
    Address,
    CustomerIdentity,
    OrderLine,
    OrderReceived,
    RejectedLine,
    ReservedLine,
    StockRejected,
    StockReserved,
)
from oms_servicekit.jobs import run_exclusively
from oms_servicekit.testing import MigratedDatabase
from order_svc.adapters.tables import credit_checks
from order_svc.adapters.watchdog_store import order_watchdog
from order_svc.credit import CreditConfig
from order_svc.settings import OrderSettings
from order_svc.watchdog import Watchdog, WatchdogPolicy, watchdog_job

CONSUMER = "order-svc"
STALL_AFTER_S = 60
MAX_RESENDS = 2
BUDGET_S = 2.0
SLACK_S = 0.5
SETTINGS = OrderSettings(
    stall_after_s=STALL_AFTER_S,
    stall_max_resends=MAX_RESENDS,
    credit_check_budget_s=BUDGET_S,
    credit_check_slack_s=SLACK_S,
)


async def run_watchdog_at(db: MigratedDatabase, at: datetime) -> None:
    """One round of the job as the runtime runs it (exclusive: under its job lock)."""
    job = watchdog_job(db.uow, SETTINGS, clock=lambda: at)
    assert await run_exclusively(db.engine, "order-watchdog", job)


async def place(api: httpx.AsyncClient, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "channel": "web",
        "channel_order_id": f"WD-{uuid.uuid4().hex[:8]}",
        "customer": {"platform_user_id": "u-1", "name": "Li Lei"},
        "lines": [{"line_no": 1, "sku": "SKU-1", "qty": 2, "unit_price": "19.90"}],
        "currency": "CNY",
        "paid": True,
        "shipping_address": {"region": "CN-SH", "city": "Shanghai"},
    }
    body.update(overrides)
    r = await api.post("/orders", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def events(db: MigratedDatabase, event_type: str, key: str) -> list[dict[str, Any]]:
    return [
        row["envelope"].payload
        for row in await db.outbox_rows()
        if row["event_type"] == event_type and row["key"] == key
    ]


async def order(api: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    r = await api.get(f"/orders/{order_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def resends(db: MigratedDatabase, order_id: str) -> int:
    async with db.uow() as uow:
        count = (
            await uow.session.execute(
                select(order_watchdog.c.resends).where(
                    order_watchdog.c.order_id == uuid.UUID(order_id)
                )
            )
        ).scalar_one_or_none()
    return count or 0


async def reserve(db: MigratedDatabase, order_id: str) -> None:
    event = StockReserved(
        order_id=uuid.UUID(order_id),
        lines=[ReservedLine(line_no=1, sku="SKU-1", qty=2, warehouse="WH-SH")],
        reserved_at=datetime.now(UTC),
    )
    await db.deliver(event)


@asynccontextmanager
async def poisoned(db: MigratedDatabase, table: str, order_id: str) -> AsyncIterator[None]:
    """Any write of ``order_id``'s row into ``table`` fails while this lasts."""
    uuid.UUID(order_id)  # only ever a UUID goes into the DDL below
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                f"ALTER TABLE {table} ADD CONSTRAINT test_poison"
                f" CHECK (order_id <> '{order_id}') NOT VALID"
            )
        )
    try:
        yield
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT test_poison"))


async def test_a_lost_order_paid_is_sent_again_then_the_order_is_queued_as_stalled(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    t0 = datetime.now(UTC)
    order_id = await place(api)
    assert len(await events(db, "OrderPaid", order_id)) == 1  # the request nobody answers

    await run_watchdog_at(db, t0 + timedelta(seconds=STALL_AFTER_S / 2))
    assert len(await events(db, "OrderPaid", order_id)) == 1  # not overdue yet

    await run_watchdog_at(db, t0 + timedelta(seconds=STALL_AFTER_S + 1))
    paid = await events(db, "OrderPaid", order_id)
    assert len(paid) == 2 and await resends(db, order_id) == 1
    assert paid[1]["order_id"] == order_id and paid[1]["lines"] == paid[0]["lines"]
    await run_watchdog_at(db, t0 + timedelta(seconds=STALL_AFTER_S + 2))
    assert len(await events(db, "OrderPaid", order_id)) == 2  # the re-send restarted the wait

    await run_watchdog_at(db, t0 + timedelta(seconds=2 * STALL_AFTER_S + 2))
    assert len(await events(db, "OrderPaid", order_id)) == 3
    assert await resends(db, order_id) == MAX_RESENDS
    assert (await order(api, order_id))["state"] == "paid"

    # Asked as often as allowed, and still no answer: a person takes over.
    await run_watchdog_at(db, t0 + timedelta(seconds=3 * STALL_AFTER_S + 3))
    assert len(await events(db, "OrderPaid", order_id)) == 3
    view = await order(api, order_id)
    assert view["state"] == "exception"
    assert view["exception_reason"].startswith("stalled (no stock answer to OrderPaid")
    r = await api.get("/exceptions", params={"cause": "stalled"})
    [item] = r.json()["items"]
    assert (item["order_id"], item["state"], item["order_state"]) == (
        order_id,
        "open",
        "exception",
    )
    [raised] = await events(db, "OrderExceptionRaised", order_id)
    assert (raised["cause"], raised["exception_id"]) == ("stalled", item["id"])
    changed = await events(db, "OrderStatusChanged", order_id)
    assert (changed[-1]["from_state"], changed[-1]["to_state"]) == ("paid", "exception")

    await run_watchdog_at(db, t0 + timedelta(hours=5))  # held in exception: left alone
    assert len(await events(db, "OrderPaid", order_id)) == 3
    assert len(await events(db, "OrderExceptionRaised", order_id)) == 1


async def test_an_order_answered_after_one_resend_is_reserved_and_routed_once(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    t0 = datetime.now(UTC)
    order_id = await place(api)
    await run_watchdog_at(db, t0 + timedelta(seconds=STALL_AFTER_S + 1))
    assert len(await events(db, "OrderPaid", order_id)) == 2

    await reserve(db, order_id)  # the answer to the re-send
    await reserve(db, order_id)  # inventory answers the late original the same way
    view = await order(api, order_id)
    assert view["state"] == "routed"
    assert [h["to_state"] for h in view["history"]].count("reserved") == 1
    assert len(await events(db, "OrderRouted", order_id)) == 1

    for minutes in (5, 60, 600):
        await run_watchdog_at(db, t0 + timedelta(minutes=minutes))
    assert len(await events(db, "OrderPaid", order_id)) == 2
    assert (await order(api, order_id))["state"] == "routed"
    assert await events(db, "OrderExceptionRaised", order_id) == []


async def test_orders_waiting_on_the_buyer_or_a_person_are_never_stalled(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    t0 = datetime.now(UTC)
    unpaid = await place(api, paid=False)
    rejected = await place(api)
    await db.deliver(
        StockRejected(
            order_id=uuid.UUID(rejected),
            lines=[RejectedLine(line_no=1, sku="SKU-1", qty=2, reason="unknown_sku", available=0)],
            rejected_at=datetime.now(UTC),
        )
    )
    assert (await order(api, unpaid))["state"] == "pending_payment"
    assert (await order(api, rejected))["state"] == "exception"

    for hours in (1, 10, 100):
        await run_watchdog_at(db, t0 + timedelta(hours=hours))
    assert (await order(api, unpaid))["state"] == "pending_payment"
    assert (await order(api, rejected))["state"] == "exception"
    assert await events(db, "OrderPaid", unpaid) == []
    assert len(await events(db, "OrderPaid", rejected)) == 1
    assert (await api.get("/exceptions", params={"cause": "stalled"})).json()["items"] == []


async def test_a_credit_check_past_its_budget_is_requeued_for_the_worker_then_stalled(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    """No worker runs (say the bureau was switched off with orders in the check)."""
    received = OrderReceived(
        order_id=uuid.uuid4(),
        channel="web",
        channel_order_id=f"WD-{uuid.uuid4().hex[:8]}",
        customer=CustomerIdentity(platform_user_id="u-1", name="Li Lei"),
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=2, unit_price=Decimal("19.90"))],
        currency="CNY",
        paid=True,
        paid_at=datetime.now(UTC),
        shipping_address=Address(region="CN-SH", city="Shanghai"),
        received_at=datetime.now(UTC),
    )
    await db.deliver(received, credit=CreditConfig(True, BUDGET_S))
    order_id = str(received.order_id)
    t0 = datetime.now(UTC)

    async def check() -> dict[str, Any]:
        async with db.uow() as uow:
            row = (
                await uow.session.execute(
                    select(credit_checks).where(credit_checks.c.order_id == received.order_id)
                )
            ).one()
        return dict(row._mapping)

    await run_watchdog_at(db, t0 + timedelta(seconds=BUDGET_S / 2))
    assert await resends(db, order_id) == 0

    at = t0 + timedelta(seconds=BUDGET_S + SLACK_S + 1)
    await run_watchdog_at(db, at)
    row = await check()
    assert row["status"] == "pending"  # the worker's queue
    assert row["deadline_at"] == at + timedelta(seconds=BUDGET_S)  # with a fresh budget
    assert await resends(db, order_id) == 1

    at += timedelta(seconds=BUDGET_S + SLACK_S + 1)
    await run_watchdog_at(db, at)
    assert await resends(db, order_id) == MAX_RESENDS
    assert (await order(api, order_id))["state"] == "credit_check"

    await run_watchdog_at(db, at + timedelta(seconds=BUDGET_S + SLACK_S + 1))
    view = await order(api, order_id)
    assert view["state"] == "exception" and view["credit_degraded"] is False
    assert view["exception_reason"].startswith("stalled (no credit check result")
    [raised] = await events(db, "OrderExceptionRaised", order_id)
    assert raised["cause"] == "stalled"
    assert await events(db, "OrderPaid", order_id) == []  # never went on without credit


async def test_an_order_that_fails_does_not_stop_the_run(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    t0 = datetime.now(UTC)
    bad = await place(api)  # handled first: the longest unchanged
    good = [await place(api) for _ in range(2)]
    watchdog = Watchdog(
        db.uow,
        WatchdogPolicy.from_settings(SETTINGS),
        clock=lambda: t0 + timedelta(seconds=STALL_AFTER_S + 5),
    )
    async with poisoned(db, "order_watchdog", bad):
        run = await watchdog.run_once()
    assert run.failed == [uuid.UUID(bad)]
    assert sorted(run.resent) == sorted(uuid.UUID(g) for g in good)
    assert len(await events(db, "OrderPaid", bad)) == 1  # its transaction rolled back whole
    for order_id in good:
        assert len(await events(db, "OrderPaid", order_id)) == 2
        assert await resends(db, order_id) == 1
    # The next run tries it again.
    assert (await watchdog.run_once()).resent == [uuid.UUID(bad)]
