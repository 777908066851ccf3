"""OrderCreated -> customer resolution, on a real PostgreSQL database; events
reach the service's production consumers through a real broker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from customer_svc.adapters.tables import customers, identities
from customer_svc.domain.identity import ChannelIdentity
from customer_svc.handlers import GROUP_ID, consumer_specs
from customer_svc.resolution import resolve_customer
from oms_contracts import make_envelope
from oms_contracts.events import (
    Address,
    CustomerIdentity,
    CustomerResolved,
    CustomerUpdated,
    OrderCreated,
    OrderLine,
)
from oms_contracts.topics import Topic
from oms_messaging import UnitOfWork


def order_created(
    channel: str = "shopee",
    platform_user_id: str = "buyer-1",
    *,
    name: str | None = "Somchai Jaidee",
    phone: str | None = "+66 81 234 5678",
    email: str | None = "Somchai@Example.com",
) -> OrderCreated:
    return OrderCreated(
        order_id=uuid.uuid4(),
        channel=channel,
        channel_order_id=f"{channel}-{uuid.uuid4().hex[:8]}",
        customer=CustomerIdentity(
            platform_user_id=platform_user_id, name=name, phone=phone, email=email
        ),
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=1, unit_price=Decimal("100"))],
        currency="THB",
        total=Decimal("100"),
        shipping_address=Address(region="Bangkok"),
        created_at=datetime.now(UTC),
    )


async def all_customers(db: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with db() as session:
        rows = await session.execute(select(customers).order_by(customers.c.created_at))
        return [dict(r._mapping) for r in rows]


async def all_identities(db: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with db() as session:
        rows = await session.execute(
            select(identities).order_by(identities.c.channel, identities.c.platform_user_id)
        )
        return [dict(r._mapping) for r in rows]


def resolved_of(emitted: list[Any]) -> CustomerResolved:
    [resolved] = all_resolved(emitted)
    return resolved


def all_resolved(emitted: list[Any]) -> list[CustomerResolved]:
    return [
        CustomerResolved.model_validate(e.payload)
        for e in emitted
        if e.event_type == "CustomerResolved"
    ]


def test_consumes_order_created_from_orders_topic() -> None:
    [spec] = consumer_specs()
    assert spec.group_id == GROUP_ID == "customer-svc"
    assert spec.topics == [Topic.ORDERS.value]
    assert set(spec.handlers) == {"OrderCreated", "OrderCancelled", "OrderShipped"}


async def test_new_buyer_creates_a_customer_and_announces_it(db, deliver, read_outbox) -> None:
    event = order_created()
    envelope = make_envelope(event, producer="order-svc", correlation_id="corr-1")

    emitted = await deliver(event, envelope=envelope)

    [customer] = await all_customers(db)
    assert customer["display_name"] == "Somchai Jaidee"
    assert customer["phone_e164"] == "+66812345678"
    assert customer["email_lower"] == "somchai@example.com"
    [identity] = await all_identities(db)
    assert identity["customer_id"] == customer["id"]
    assert (identity["channel"], identity["platform_user_id"]) == ("shopee", "buyer-1")
    assert (identity["phone"], identity["email"]) == ("+66812345678", "somchai@example.com")

    assert [e.event_type for e in emitted] == ["CustomerUpdated", "CustomerResolved"]
    updated = CustomerUpdated.model_validate(emitted[0].payload)
    assert updated.customer_id == customer["id"]
    assert updated.changed_fields == ["created"]
    resolved = resolved_of(emitted)
    assert resolved.customer_id == customer["id"]
    assert resolved.order_id == event.order_id
    assert (resolved.channel, resolved.platform_user_id) == ("shopee", "buyer-1")
    assert resolved.new_customer is True

    rows = await read_outbox()
    assert [r["event_type"] for r in rows] == ["CustomerUpdated", "CustomerResolved"]
    for row in rows:
        assert row["topic"] == Topic.CUSTOMERS.value
        assert row["key"] == str(customer["id"])
        assert row["published_at"] is None
        assert row["envelope"].producer == "customer-svc"
        assert row["envelope"].correlation_id == "corr-1"
        assert row["envelope"].causation_id == str(envelope.event_id)


async def test_returning_buyer_is_matched_by_platform_id(db, deliver, read_outbox) -> None:
    first = resolved_of(await deliver(order_created()))
    # Same channel identity, other contact data: still the same person.
    again = await deliver(order_created(phone="+1 415 555 0100", email="new@example.com"))

    assert [e.event_type for e in again] == ["CustomerResolved"]
    second = resolved_of(again)
    assert second.customer_id == first.customer_id
    assert second.new_customer is False
    assert len(await all_customers(db)) == 1
    assert len(await all_identities(db)) == 1
    assert len(await read_outbox()) == 3


async def test_other_channel_same_phone_links_to_the_customer(db, deliver) -> None:
    first = resolved_of(await deliver(order_created()))
    emitted = await deliver(
        order_created("lazada", "lz-9", name="S. Jaidee", phone="(+66) 81-234-5678", email=None),
    )

    assert [e.event_type for e in emitted] == ["CustomerResolved"]
    resolved = resolved_of(emitted)
    assert resolved.customer_id == first.customer_id
    assert resolved.new_customer is False
    ids = await all_identities(db)
    assert {(i["channel"], i["customer_id"]) for i in ids} == {
        ("shopee", first.customer_id),
        ("lazada", first.customer_id),
    }
    assert len(await all_customers(db)) == 1


async def test_other_channel_same_email_links_to_the_customer(db, deliver) -> None:
    first = resolved_of(await deliver(order_created(phone=None)))
    resolved = resolved_of(
        await deliver(
            order_created("line", "U42", phone="+44 20 7946 0000", email=" SOMCHAI@example.COM"),
        )
    )
    assert resolved.customer_id == first.customer_id
    assert len(await all_customers(db)) == 1


async def test_match_through_a_linked_identitys_contact(db, deliver) -> None:
    """Phone only on channel A, phone + e-mail on B, e-mail only on C: one person."""
    a = resolved_of(await deliver(order_created("a", "1", email=None)))
    b = resolved_of(await deliver(order_created("b", "2", email="s@example.com")))
    c = resolved_of(await deliver(order_created("c", "3", phone=None, email="S@example.com")))
    assert a.customer_id == b.customer_id == c.customer_id
    assert len(await all_customers(db)) == 1


async def test_no_match_creates_another_customer(db, deliver) -> None:
    first = resolved_of(await deliver(order_created()))
    other = resolved_of(
        await deliver(
            order_created("lazada", "lz-1", name="Other", phone="0899999999", email="o@x.com"),
        )
    )
    assert other.customer_id != first.customer_id
    assert other.new_customer is True
    assert len(await all_customers(db)) == 2


async def test_unusable_contact_data_is_ignored_not_matched(db, deliver) -> None:
    first = resolved_of(await deliver(order_created("a", "1", phone="0", email="n/a")))
    second = resolved_of(await deliver(order_created("b", "2", phone="0", email="n/a")))
    assert first.customer_id != second.customer_id
    customer = (await all_customers(db))[0]
    assert customer["phone_e164"] is None
    assert customer["email_lower"] is None


async def test_redelivered_event_changes_nothing(db, deliver, read_outbox) -> None:
    event = order_created()
    envelope = make_envelope(event, producer="order-svc")
    assert len(await deliver(event, envelope=envelope)) == 2
    assert await deliver(event, envelope=envelope) == []
    assert len(await all_customers(db)) == 1
    assert len(await read_outbox()) == 2


async def _wait_until_blocked(db: async_sessionmaker[AsyncSession]) -> None:
    """Until some session of this database waits for a lock (bounded)."""
    for _ in range(250):
        # A new transaction each time: the backend status is a snapshot per transaction.
        async with db() as session:
            waiting = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            ).scalar_one()
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the concurrent resolution never blocked")


async def _race_one_identity(db, identity: ChannelIdentity) -> None:
    """The second resolution starts while the first has linked but not committed."""
    async with UnitOfWork(db, producer="customer-svc") as first:
        winner = await resolve_customer(first, identity)
        assert winner.new_customer

        async def second() -> Any:
            async with UnitOfWork(db, producer="customer-svc") as uow:
                result = await resolve_customer(uow, identity)
                await uow.commit()
                return result, uow.emitted

        loser = asyncio.create_task(second())
        await _wait_until_blocked(db)
        await first.commit()
    result, emitted = await asyncio.wait_for(loser, 10)
    assert result.customer_id == winner.customer_id
    assert result.matched_by == "platform_id"
    assert emitted == []  # no second "created"
    assert len(await all_customers(db)) == 1
    assert len(await all_identities(db)) == 1


async def test_race_on_the_unique_identity_reads_back_the_winner(db) -> None:
    # No contact data: nothing serializes the two but the unique (channel, user) key,
    # so the second one inserts a customer, hits ON CONFLICT and rolls it back.
    await _race_one_identity(db, ChannelIdentity("shopee", "racer"))


async def test_race_with_contact_data_is_serialized(db) -> None:
    await _race_one_identity(db, ChannelIdentity("shopee", "racer", "R", "0812345678", "r@x.io"))


async def test_many_concurrent_orders_of_one_new_person_make_one_customer(db, deliver_many) -> None:
    events = [order_created(phone=None, email=None) for _ in range(6)]
    events += [order_created() for _ in range(6)]
    # One burst to two instances of the consumer, whose transactions race.
    emitted = await deliver_many(events, replicas=2)

    resolved = all_resolved(emitted)
    assert len(resolved) == len(events)
    assert len({r.customer_id for r in resolved}) == 1
    assert sum(r.new_customer for r in resolved) == 1
    assert sum(e.event_type == "CustomerUpdated" for e in emitted) == 1
    assert len(await all_customers(db)) == 1


async def test_concurrent_identities_sharing_a_phone_make_one_customer(db, deliver_many) -> None:
    events = [order_created(f"channel-{i}", f"user-{i}", email=None) for i in range(8)]
    resolved = all_resolved(await deliver_many(events, replicas=2))

    assert len(resolved) == len(events)
    assert len({r.customer_id for r in resolved}) == 1
    async with db() as session:
        count = (await session.execute(select(func.count()).select_from(customers))).scalar_one()
    assert count == 1
    assert len(await all_identities(db)) == 8
