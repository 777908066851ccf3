"""Turning one channel order (from any adapter) into events, exactly once.

In the caller's unit of work: a new channel order is claimed and becomes
``OrderReceived`` (and ``OrderCancelled`` if it arrives cancelled); a known one that is
now paid or cancelled becomes ``OrderPaid`` / ``OrderCancelled`` for the order the gateway
created, once each; anything else is a duplicate. Every outcome is written to the
delivery audit. The caller commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from channel_gateway.adapters.repository import GatewayRepository
from channel_gateway.domain.platforms import UNKNOWN_SKU_MAPPING, ChannelOrder
from oms_contracts.events import OrderCancelled, OrderLine, OrderPaid
from oms_messaging import UnitOfWork

Outcome = Literal["accepted", "duplicate", "updated"]


@dataclass(frozen=True)
class Ingested:
    order_ref: uuid.UUID
    status: Outcome


async def ingest(
    uow: UnitOfWork,
    channel: str,
    incoming: ChannelOrder,
    *,
    delivery_id: str | None = None,
    topic: str | None = None,
    actor: str = "channel",
) -> Ingested:
    repo = GatewayRepository(uow.session)
    order = incoming.order
    now = datetime.now(UTC)
    lines = [
        OrderLine(line_no=i, sku=line.sku, qty=line.qty, unit_price=line.unit_price)
        for i, line in enumerate(order.lines, start=1)
    ]
    order_id = await repo.claim_channel_order(
        channel,
        order.channel_order_id,
        uuid.uuid4(),
        currency=order.currency,
        lines=[line.model_dump(mode="json") for line in lines],
        paid_at=order.paid_at if order.paid else None,
        cancelled_at=now if incoming.cancelled else None,
    )
    audit = {"delivery_id": delivery_id, "topic": topic}
    if order_id is not None:
        await uow.emit(order.to_event(channel=channel, order_id=order_id, received_at=now))
        if incoming.unmapped_skus:
            detail = f"{UNKNOWN_SKU_MAPPING}: {', '.join(incoming.unmapped_skus)}"
            await repo.record_delivery(channel, "accepted_unknown_sku", detail, order_id, **audit)
        else:
            await repo.record_delivery(channel, "accepted", order_id=order_id, **audit)
        if incoming.cancelled:
            await _cancel(uow, channel, order_id, incoming, actor, now)
        return Ingested(order_id, "accepted")

    known = await repo.known_order(channel, order.channel_order_id, for_update=True)
    assert known is not None
    changes: list[str] = []
    if order.paid and known.paid_at is None and known.cancelled_at is None:
        stored = [OrderLine.model_validate(line) for line in known.lines or []] or lines
        await uow.emit(
            OrderPaid(
                order_id=known.order_id,
                channel=channel,
                lines=stored,
                currency=known.currency or order.currency,
                total=sum((ln.unit_price * ln.qty for ln in stored), Decimal("0")),
                paid_at=order.paid_at or now,
            )
        )
        await repo.mark_order(channel, order.channel_order_id, paid_at=order.paid_at or now)
        changes.append("paid")
    if incoming.cancelled and known.cancelled_at is None:
        await _cancel(uow, channel, known.order_id, incoming, actor, now)
        await repo.mark_order(channel, order.channel_order_id, cancelled_at=now)
        changes.append("cancelled")
    if changes:
        await repo.record_delivery(channel, "updated", ", ".join(changes), known.order_id, **audit)
        return Ingested(known.order_id, "updated")
    await repo.record_delivery(channel, "duplicate", order_id=known.order_id, **audit)
    return Ingested(known.order_id, "duplicate")


async def _cancel(
    uow: UnitOfWork,
    channel: str,
    order_id: uuid.UUID,
    incoming: ChannelOrder,
    actor: str,
    now: datetime,
) -> None:
    await uow.emit(
        OrderCancelled(
            order_id=order_id,
            channel=channel,
            reason=incoming.cancel_reason or "cancelled by the channel",
            actor=actor,
            cancelled_at=now,
        )
    )


async def ingest_many(
    uow: UnitOfWork, channel: str, incoming: list[ChannelOrder], *, topic: str, actor: str
) -> list[Ingested]:
    """:func:`ingest` for a batch (bulk import): new orders are claimed in one statement.

    Orders the batch does not claim (known before, or repeated within the batch) go
    through :func:`ingest` one by one, so they are duplicates or updates as usual.
    """
    repo = GatewayRepository(uow.session)
    now = datetime.now(UTC)
    wanted = {}
    for item in incoming:
        order = item.order
        if order.channel_order_id in wanted:
            continue
        lines = [
            OrderLine(line_no=i, sku=ln.sku, qty=ln.qty, unit_price=ln.unit_price)
            for i, ln in enumerate(order.lines, start=1)
        ]
        wanted[order.channel_order_id] = {
            "channel": channel,
            "channel_order_id": order.channel_order_id,
            "order_id": uuid.uuid4(),
            "currency": order.currency,
            "lines": [ln.model_dump(mode="json") for ln in lines],
            "paid_at": order.paid_at if order.paid else None,
            "cancelled_at": now if item.cancelled else None,
        }
    claimed = await repo.claim_many(list(wanted.values()))
    results: list[Ingested] = []
    audits: list[dict[str, object]] = []
    for item in incoming:
        order = item.order
        order_id = claimed.pop(order.channel_order_id, None)
        if order_id is None:
            results.append(await ingest(uow, channel, item, topic=topic, actor=actor))
            continue
        await uow.emit(order.to_event(channel=channel, order_id=order_id, received_at=now))
        if item.cancelled:
            await _cancel(uow, channel, order_id, item, actor, now)
        detail = (
            f"{UNKNOWN_SKU_MAPPING}: {', '.join(item.unmapped_skus)}"
            if item.unmapped_skus
            else None
        )
        audits.append(
            {
                "outcome": "accepted_unknown_sku" if detail else "accepted",
                "detail": detail,
                "order_id": order_id,
            }
        )
        results.append(Ingested(order_id, "accepted"))
    await repo.record_deliveries(channel, audits, topic=topic)
    return results
