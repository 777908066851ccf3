"""Only holds of orders not yet confirmed expire, on the real schedule: the inventory
service itself (its app and lifespan: consumers, outbox relay, the periodic sweeper) with
a TTL of two seconds, fed ``OrderPaid`` and ``OrderConfirmed`` over a real broker, on the
real PostgreSQL.

A confirmed order may wait for a slow warehouse far beyond the TTL; if its stock were
released meanwhile, the later shipment would deduct nothing (phantom stock, an oversell).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from inventory_svc.adapters.stock_repository import Change
from inventory_svc.adapters.tables import ledger, reservations, stock
from inventory_svc.bootstrap import build_app
from inventory_svc.inventory import Inventory
from inventory_svc.settings import InventorySettings
from oms_contracts import Envelope, Event, make_envelope
from oms_contracts.events import OrderConfirmed, OrderLine, OrderPaid
from oms_contracts.topics import Topic
from oms_devstack.broker import Broker
from oms_devstack.ports import free_port
from oms_servicekit.testing import MigratedDatabase, read_topic

TTL_S = 2
SWEEP_INTERVAL_S = 0.5
SKU = "S-EXPIRY"
WAREHOUSE = "WH-1"

T = TypeVar("T")


@pytest.fixture(scope="module")
async def broker(artifacts_dir: Path) -> AsyncIterator[str]:
    """A broker of this module's own: on the session's broker, this service's consumer
    group would share ``oms.orders`` with the inventory service of the end-to-end stack
    and take its events (and this test would read theirs)."""
    broker = Broker(free_port(), artifacts_dir / "inventory-expiry-broker.log")
    await broker.start()
    try:
        yield broker.bootstrap
    finally:
        await broker.stop()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout: float = 30,
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout}s")
        await asyncio.sleep(0.1)


def order_paid(qty: int) -> OrderPaid:
    return OrderPaid(
        order_id=uuid.uuid4(),
        channel="web",
        lines=[OrderLine(line_no=1, sku=SKU, qty=qty, unit_price=Decimal("10"))],
        currency="CNY",
        total=Decimal(10 * qty),
        paid_at=datetime.now(UTC),
    )


async def publish(bootstrap: str, *events: Event) -> None:
    """Publish as order-svc's outbox relay does: keyed by order id, in this order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            envelope = make_envelope(event, producer="order-svc")
            await producer.send_and_wait(
                Topic.ORDERS.value,
                value=envelope.model_dump_json().encode(),
                key=envelope.key.encode(),
                headers=[("event_type", envelope.event_type.encode())],
            )
    finally:
        await producer.stop()


async def receive_stock(db: MigratedDatabase, qty: int) -> None:
    async with db.uow() as uow:
        inv = Inventory(uow)
        await inv.repo.add_warehouse(
            {
                "code": WAREHOUSE,
                "name": WAREHOUSE,
                "region": "CN-SH",
                "latitude": 31.2,
                "longitude": 121.5,
            }
        )
        await inv.repo.add_sku({"sku": SKU, "name": SKU})
        await inv.receive(SKU, WAREHOUSE, qty, Change("receipt", "test", "tester"))
        await uow.commit()


async def holds(db: MigratedDatabase) -> dict[uuid.UUID, tuple[str, datetime | None]]:
    """Order id -> (state, expires_at) of its reservation line."""
    async with db.session_factory() as s:
        rows = await s.execute(
            select(reservations.c.order_id, reservations.c.state, reservations.c.expires_at)
        )
    return {r.order_id: (r.state, r.expires_at) for r in rows}


async def level(db: MigratedDatabase) -> tuple[int, int]:
    async with db.session_factory() as s:
        row = (
            await s.execute(
                select(stock.c.on_hand, stock.c.reserved).where(
                    stock.c.sku == SKU, stock.c.warehouse == WAREHOUSE
                )
            )
        ).one()
    return row.on_hand, row.reserved


async def ledger_of(db: MigratedDatabase, order_id: uuid.UUID) -> list[tuple[str, str, int]]:
    async with db.session_factory() as s:
        rows = await s.execute(
            select(ledger.c.kind, ledger.c.reason, ledger.c.delta_reserved)
            .where(ledger.c.order_id == order_id)
            .order_by(ledger.c.id)
        )
    return [(r.kind, r.reason, r.delta_reserved) for r in rows]


async def test_a_confirmed_order_keeps_its_stock_while_an_unconfirmed_hold_expires(
    db: MigratedDatabase, broker: str
) -> None:
    await receive_stock(db, 10)
    settings = InventorySettings(
        database_url=db.settings.database_url,
        db_name=db.settings.db_name,
        kafka_bootstrap_servers=broker,
        reservation_ttl_s=TTL_S,
        sweep_interval_s=SWEEP_INTERVAL_S,
        startup_timeout_s=30,
    )
    app = build_app(settings)
    confirmed, unconfirmed = order_paid(2), order_paid(3)
    async with app.router.lifespan_context(app):
        await publish(
            broker,
            confirmed,
            unconfirmed,
            OrderConfirmed(
                order_id=confirmed.order_id, channel="web", confirmed_at=datetime.now(UTC)
            ),
        )
        # Both reserved (the confirmation follows its order's OrderPaid on the partition).
        await eventually(lambda: holds(db), lambda h: len(h) == 2)
        # Well past the TTL, the sweeper having run several times since.
        await asyncio.sleep(TTL_S + 2)
        await eventually(
            lambda: holds(db), lambda h: h[unconfirmed.order_id][0] == "released", timeout=10
        )
        # Relayed to the broker by the service's own outbox relay.
        messages = await read_topic(broker, Topic.RESERVATIONS.value, 3)

    assert (await holds(db))[confirmed.order_id] == ("reserved", None)
    assert await level(db) == (10, 2)
    assert await ledger_of(db, confirmed.order_id) == [("reservation", "order paid", 2)]
    assert await ledger_of(db, unconfirmed.order_id) == [
        ("reservation", "order paid", 3),
        ("release", "expired", -3),
    ]

    def releases(envelopes: list[Envelope]) -> list[tuple[str, Any]]:
        return [
            (e.payload["order_id"], e.payload["reason"])
            for e in envelopes
            if e.event_type == "StockReleased"
        ]

    expected = [(str(unconfirmed.order_id), "expired")]
    assert releases([r["envelope"] for r in await db.outbox_rows()]) == expected
    assert releases([Envelope.model_validate_json(m.value) for m in messages]) == expected
