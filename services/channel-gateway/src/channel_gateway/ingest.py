"""Turning one channel order (from any adapter) into channel facts, exactly once.

The gateway publishes what the channels say, never what the OMS decides: a channel
order seen for the first time becomes ``OrderReceived`` (followed by a
``ChannelOrderUpdated`` saying "cancelled" when it arrives cancelled); a later delivery
of a known order becomes one ``ChannelOrderUpdated`` carrying the channel's current view
when it says something new (paid, cancelled, other lines, another address), nothing when
it repeats what was heard, and nothing when it is older (by the channel's own
timestamp) than what was applied. order-svc, the order's owner, decides what a fact
means for the order in its state. Every outcome is written to the delivery audit. In
the caller's unit of work; the caller commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from channel_gateway.adapters.repository import Audit, GatewayRepository, KnownOrder
from channel_gateway.domain.order_facts import Delivery, HeardBefore, changes, is_stale
from channel_gateway.domain.platforms import UNKNOWN_SKU_MAPPING, ChannelOrder
from oms_contracts.events import Address, ChannelOrderUpdated, OrderLine
from oms_messaging import UnitOfWork
from oms_messaging.context import correlated

Outcome = Literal["accepted", "duplicate", "updated"]


@dataclass(frozen=True)
class Ingested:
    order_ref: uuid.UUID
    status: Outcome


def _lines(incoming: ChannelOrder) -> list[OrderLine]:
    return [
        OrderLine(line_no=i, sku=line.sku, qty=line.qty, unit_price=line.unit_price)
        for i, line in enumerate(incoming.order.lines, start=1)
    ]


def _remembered(incoming: ChannelOrder, now: datetime) -> dict[str, Any]:
    """The columns the gateway keeps of what the channel said in this delivery."""
    order = incoming.order
    return {
        "currency": order.currency,
        "lines": [line.model_dump(mode="json") for line in _lines(incoming)],
        "paid_at": order.paid_at if order.paid else None,
        "cancelled_at": now if incoming.cancelled else None,
        "shipping_address": order.shipping_address.model_dump(mode="json"),
        "channel_updated_at": order.updated_at,
    }


def _delivery(incoming: ChannelOrder) -> Delivery:
    order = incoming.order
    return Delivery(
        paid=order.paid,
        cancelled=incoming.cancelled,
        lines=[line.model_dump(mode="json") for line in _lines(incoming)],
        shipping_address=order.shipping_address.model_dump(mode="json"),
        channel_updated_at=order.updated_at,
    )


def _heard(known: KnownOrder) -> HeardBefore:
    return HeardBefore(
        paid=known.paid_at is not None,
        cancelled=known.cancelled_at is not None,
        lines=known.lines,
        shipping_address=known.shipping_address,
        channel_updated_at=known.channel_updated_at,
    )


def channel_update(
    channel: str,
    order_id: uuid.UUID,
    incoming: ChannelOrder,
    changed: list[Any],
    *,
    paid_at: datetime | None,
    now: datetime,
) -> ChannelOrderUpdated:
    """The fact "the channel now says this about the order" (its whole current view)."""
    order = incoming.order
    return ChannelOrderUpdated(
        order_id=order_id,
        channel=channel,
        channel_order_id=order.channel_order_id,
        changes=changed,
        paid=paid_at is not None,
        paid_at=paid_at,
        cancelled=incoming.cancelled,
        cancelled_at=now if incoming.cancelled else None,
        cancel_reason=(incoming.cancel_reason or "cancelled by the channel")
        if incoming.cancelled
        else None,
        lines=_lines(incoming),
        currency=order.currency,
        shipping_address=Address(**order.shipping_address.model_dump()),
        channel_updated_at=order.updated_at,
        received_at=now,
    )


async def ingest(
    uow: UnitOfWork,
    channel: str,
    incoming: ChannelOrder,
    *,
    delivery_id: str | None = None,
    topic: str | None = None,
    actor: str = "channel",
    link_delivery: bool = False,
) -> Ingested:
    """``link_delivery``: the caller claimed ``delivery_id`` in this unit of work; it is
    pointed at the order by the statement that writes the audit row (no extra trip).

    Round trips, since this is the webhook's ack path: a new order is claimed and
    audited in one statement, then its event goes to the outbox; a known one is
    claimed (nothing happens), read under lock, and audited in one statement that also
    stores what was heard when it is an update (whose event goes to the outbox too).
    """
    repo = GatewayRepository(uow.session)
    order = incoming.order
    now = datetime.now(UTC)
    remembered = _remembered(incoming, now)
    accepted = (
        Audit(
            "accepted_unknown_sku",
            f"{UNKNOWN_SKU_MAPPING}: {', '.join(incoming.unmapped_skus)}",
            delivery_id,
            topic,
        )
        if incoming.unmapped_skus
        else Audit("accepted", None, delivery_id, topic)
    )
    order_id = await repo.claim_channel_order(
        channel,
        order.channel_order_id,
        uuid.uuid4(),
        **remembered,
        audit=accepted,
        link_delivery=link_delivery,
    )
    if order_id is not None:
        await _publish_new(uow, channel, order_id, incoming, now)
        return Ingested(order_id, "accepted")

    known = await repo.known_order(channel, order.channel_order_id, for_update=True)
    assert known is not None  # claimed before: channel orders are never deleted
    before, delivery = _heard(known), _delivery(incoming)
    if is_stale(before, delivery):
        detail = f"older than the version applied ({known.channel_updated_at:%Y-%m-%dT%H:%M:%S})"
        await repo.record_delivery(
            channel,
            "stale",
            detail,
            known.order_id,
            delivery_id=delivery_id,
            topic=topic,
            link_delivery=link_delivery,
        )
        return Ingested(known.order_id, "duplicate")
    changed = changes(before, delivery)
    if not changed:
        await repo.record_delivery(
            channel,
            "duplicate",
            order_id=known.order_id,
            delivery_id=delivery_id,
            topic=topic,
            link_delivery=link_delivery,
        )
        return Ingested(known.order_id, "duplicate")
    paid_at = known.paid_at or (order.paid_at if order.paid else None)
    await uow.emit(
        channel_update(channel, known.order_id, incoming, changed, paid_at=paid_at, now=now)
    )
    # Payment and cancellation are one-way: what was heard stays heard.
    remembered["paid_at"] = paid_at
    remembered["cancelled_at"] = known.cancelled_at or remembered["cancelled_at"]
    if delivery.channel_updated_at is None:
        remembered["channel_updated_at"] = known.channel_updated_at
    await repo.remember(
        channel,
        order.channel_order_id,
        remembered,
        audit=Audit("updated", ", ".join(changed), delivery_id, topic),
        order_id=known.order_id,
        link_delivery=link_delivery,
    )
    return Ingested(known.order_id, "updated")


async def _publish_new(
    uow: UnitOfWork, channel: str, order_id: uuid.UUID, incoming: ChannelOrder, now: datetime
) -> None:
    """A channel order seen for the first time; one that arrives cancelled is also said
    to be cancelled (order-svc creates it, then cancels it: nothing is reserved)."""
    order = incoming.order
    await uow.emit(order.to_event(channel=channel, order_id=order_id, received_at=now))
    if incoming.cancelled:
        paid_at = order.paid_at if order.paid else None
        await uow.emit(
            channel_update(channel, order_id, incoming, ["cancelled"], paid_at=paid_at, now=now)
        )


async def ingest_many(
    uow: UnitOfWork, channel: str, incoming: list[ChannelOrder], *, topic: str, actor: str
) -> list[Ingested]:
    """:func:`ingest` for a batch of one channel (bulk import): see :func:`ingest_batch`."""
    return await ingest_batch(uow, [(channel, item) for item in incoming], topic=topic, actor=actor)


async def ingest_batch(
    uow: UnitOfWork,
    incoming: list[tuple[str, ChannelOrder]],
    *,
    topic: str | None = None,
    actor: str = "channel",
    correlation_ids: Sequence[str | None] | None = None,
) -> list[Ingested]:
    """:func:`ingest` for a batch of (channel, order) deliveries, in their order: new
    orders are claimed and audited in one statement.

    Orders the batch does not claim (known before, or repeated within the batch) go
    through :func:`ingest` one by one, so they are duplicates or updates as usual.
    ``correlation_ids`` (one per delivery: deliveries of several requests committed
    together) are what each delivery's events carry; without them, the caller's.
    """
    repo = GatewayRepository(uow.session)
    now = datetime.now(UTC)
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for channel, item in incoming:
        key = (channel, item.order.channel_order_id)
        if key not in wanted:
            outcome, detail = _acceptance(item)
            wanted[key] = {
                "channel": channel,
                "channel_order_id": item.order.channel_order_id,
                "order_id": uuid.uuid4(),
                **_remembered(item, now),
                "outcome": outcome,
                "detail": detail,
            }
    # One round trip claims the new orders and audits their acceptance: on a busy day
    # the gateway's writer is never idle, and each round trip of a group is time the
    # next group's requests wait for their answer.
    claimed = await repo.claim_and_audit_many(list(wanted.values()), topic=topic)
    results: list[Ingested] = []
    for position, (channel, item) in enumerate(incoming):
        correlation = correlated(correlation_ids[position]) if correlation_ids else nullcontext()
        order_id = claimed.pop((channel, item.order.channel_order_id), None)
        if order_id is None:
            with correlation:
                results.append(await ingest(uow, channel, item, topic=topic, actor=actor))
            continue
        with correlation:
            await _publish_new(uow, channel, order_id, item, now)
        results.append(Ingested(order_id, "accepted"))
    return results


def _acceptance(item: ChannelOrder) -> tuple[str, str | None]:
    """The audit outcome and detail of ``item`` accepted as a new order."""
    if not item.unmapped_skus:
        return "accepted", None
    return "accepted_unknown_sku", f"{UNKNOWN_SKU_MAPPING}: {', '.join(item.unmapped_skus)}"[:2000]
