"""The consistency check across services (order-svc's ``GET /consistency``) on a real
stack: a normal paid order agrees with its reservation; a real disagreement shows up with
the right kind and goes away once the services catch up.

There is no operator endpoint in inventory-svc that releases or takes stock for an order
on its own, so the disagreements are made the way they happen in production: the broker
stalls (SIGSTOP) while an operator cancels a reserved order in order-svc, so inventory
still holds the stock of a cancelled order until the broker comes back; and an order
event from outside order-svc makes inventory hold stock for an order order-svc never
took. The stack has its own broker (it gets frozen).
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from oms_contracts import make_envelope
from oms_contracts.events import OrderCancelled, OrderLine, OrderPaid
from oms_contracts.topics import Topic
from oms_devstack.stack import Stack
from tests.e2e.conftest import Oms, assert_consistent, consistency, eventually, order_body

#: Short, so the test waits little for changes to count as settled.
GRACE_S = 1.0


@pytest.fixture(scope="module")
async def own_stack(artifacts_dir: Path) -> AsyncIterator[Stack]:
    stack = Stack.for_tests(artifacts_dir / "e2e-consistency-stack")
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop(drop_databases=True)


@pytest.fixture(scope="module")
async def oms(own_stack: Stack, http: httpx.AsyncClient) -> Oms:
    api = Oms(own_stack, http)
    await api.setup_catalogue()
    return api


async def placed_and_reserved(oms: Oms, sku: str, qty: int = 1) -> str:
    """A paid order, once it holds its stock; its id."""
    r = await oms.post_order("web", order_body(sku, qty))
    assert r.status_code in (200, 202), r.text
    ref = str(r.json()["order_ref"])
    order = await eventually(
        lambda: oms.find_order(ref), lambda o: o["state"] in ("confirmed", "routed"), timeout=60
    )
    return str(order["id"])


def listed(answer: dict[str, Any], order_id: str) -> list[tuple[str | None, str]]:
    return [(d["state"], d["kind"]) for d in answer["disagreements"] if d["order_id"] == order_id]


async def publish(stack: Stack, event: OrderPaid | OrderCancelled) -> None:
    """An order event put on the bus by something other than order-svc's outbox."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        envelope = make_envelope(event, producer="order-svc")
        await producer.send_and_wait(
            Topic.ORDERS.value,
            envelope.model_dump_json().encode(),
            key=str(event.order_id).encode(),
        )
    finally:
        await producer.stop()


async def test_a_paid_order_agrees_with_its_reservation(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    order_id = await placed_and_reserved(oms, sku, qty=2)

    answer = await assert_consistent(oms, grace_s=GRACE_S)

    assert answer["orders_checked"] >= 1 and answer["reservations_checked"] >= 1
    assert listed(answer, order_id) == []


async def test_stock_held_for_an_order_cancelled_while_the_broker_stalls(
    oms: Oms, own_stack: Stack
) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    order_id = await placed_and_reserved(oms, sku)
    await assert_consistent(oms, grace_s=GRACE_S)
    broker = own_stack.broker
    assert broker is not None and broker.process is not None

    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        r = await oms.http.post(
            f"{oms.orders}/orders/{order_id}/cancel",
            json={"reason": "buyer called"},
            headers={"X-Operator": "ops@example.com"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "cancelled"
        # order-svc cancelled; OrderCancelled waits in its outbox, inventory holds on.
        answer = await eventually(
            lambda: consistency(oms, GRACE_S), lambda a: listed(a, order_id), timeout=30
        )
        assert listed(answer, order_id) == [("cancelled", "stock_held_for_closed_order")]
        [found] = [d for d in answer["disagreements"] if d["order_id"] == order_id]
        assert sku in found["detail"]
        assert (await oms.stock(sku))["reserved"] == 1
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)

    # The broker is back: inventory hears of the cancellation and releases the stock.
    await assert_consistent(oms, grace_s=GRACE_S)
    assert (await oms.stock(sku))["reserved"] == 0


async def test_stock_held_for_an_order_order_svc_never_took(oms: Oms, own_stack: Stack) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    stranger = uuid.uuid4()
    await publish(
        own_stack,
        OrderPaid(
            order_id=stranger,
            channel="web",
            lines=[OrderLine(line_no=1, sku=sku, qty=2, unit_price=Decimal("9.90"))],
            currency="CNY",
            total=Decimal("19.80"),
            paid_at=datetime.now(UTC),
        ),
    )
    await eventually(lambda: oms.stock(sku), lambda s: s["reserved"] == 2, timeout=30)

    answer = await eventually(
        lambda: consistency(oms, GRACE_S), lambda a: listed(a, str(stranger)), timeout=30
    )

    assert listed(answer, str(stranger)) == [(None, "unknown_order")]
    # Released (the same way), the stock agrees again.
    await publish(
        own_stack,
        OrderCancelled(
            order_id=stranger,
            channel="web",
            reason="not ours",
            actor="e2e",
            cancelled_at=datetime.now(UTC),
        ),
    )
    await assert_consistent(oms, grace_s=GRACE_S)
