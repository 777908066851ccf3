"""order-svc's consumer as deployed: its handler map in the production ConsumerRunner, fed
through a real broker. A redelivered envelope changes nothing (the inbox), and poison
(an event of a schema version nobody knows) is parked on the topic's dead-letter topic
while the partition moves on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from oms_contracts import make_envelope
from oms_contracts.events import Address, CustomerIdentity, OrderLine, OrderReceived
from oms_contracts.topics import Topic
from oms_servicekit.testing import MigratedDatabase


def received() -> OrderReceived:
    return OrderReceived(
        order_id=uuid.uuid4(),
        channel="web",
        channel_order_id=f"W-{uuid.uuid4().hex[:8]}",
        customer=CustomerIdentity(platform_user_id="u-1", name="Li Lei"),
        lines=[OrderLine(line_no=1, sku="A", qty=1, unit_price=Decimal("9.90"))],
        currency="CNY",
        paid=True,
        paid_at=datetime.now(UTC),
        shipping_address=Address(region="CN-SH", city="x"),
        received_at=datetime.now(UTC),
    )


async def test_a_redelivered_envelope_is_applied_once(db: MigratedDatabase) -> None:
    event = received()
    envelope = make_envelope(event, producer="channel-gateway")
    first = await db.deliver(event, envelope=envelope)
    assert "OrderCreated" in [e.event_type for e in first]
    driver = await db.drivers.get()  # type: ignore[union-attr]
    duplicates = driver.outcomes("duplicate")

    assert await db.deliver(event, envelope=envelope) == []

    assert driver.outcomes("duplicate") == duplicates + 1
    outbox = [r for r in await db.outbox_rows() if r["key"] == str(event.order_id)]
    assert [r["event_type"] for r in outbox].count("OrderCreated") == 1


async def test_poison_goes_to_the_dead_letter_topic_and_the_partition_moves_on(
    db: MigratedDatabase,
) -> None:
    poison = make_envelope(received(), producer="channel-gateway").model_copy(
        update={"schema_version": 99}
    )
    driver = await db.drivers.get()  # type: ignore[union-attr]
    parked = driver.outcomes("dead_lettered")

    assert await driver.deliver_many([poison]) == []

    assert driver.outcomes("dead_lettered") == parked + 1
    dead = await driver.dead_letter(Topic.CHANNEL_ORDERS.value, poison.event_id)
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlq.origin_topic"] == Topic.CHANNEL_ORDERS.value
    assert headers["dlq.consumer"] == "order-svc"
    # The next event on the topic is applied as usual.
    assert "OrderCreated" in [e.event_type for e in await db.deliver(received())]
