"""A run of OrderCreated applied set-based (``oms_messaging.BatchHandler``).

One by one, a new buyer costs about fifteen statements (look up the identity, lock its
contacts, look again, match by contact, create, link, keep the address, look for a merge
proposal, count the order, read and write the totals). Here a run of hundreds:

1. resolves every buyer in order (``service_layer.resolve_many``: a fixed number of
   statements for the run, the same answers as one by one);
2. writes the orders in one statement and the running totals per customer in two;
3. emits ``CustomerUpdated(created)`` for each new customer, then ``CustomerResolved``
   per order, in order, each naming the order's event as its cause. Per customer (the
   events' key) the order is the one-by-one order: a customer is created before any of
   its orders is resolved. Emitted one after the other, the two kinds would alternate
   within a partition, and a consumer that applies runs of one type together (order-svc)
   would get runs of one.

A link lost to a concurrent resolution (another replica linked the same identity between
our read and our write) fails the run, and the consumer applies it event by event with
``handlers.on_order_created``, the reference this module is tested against.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from customer_svc.adapters.order_totals import COLD_CHAIN, FRAGILE
from customer_svc.domain.identity import (
    ChannelIdentity,
    NormalizedIdentity,
)
from customer_svc.profiles import apply_tag_rules_at_commit
from customer_svc.service_layer.resolve_many import resolve_identities
from oms_contracts import Envelope, Event
from oms_contracts.events import CustomerResolved, CustomerUpdated, OrderCreated
from oms_messaging import UnitOfWork
from oms_servicekit.logging import mask

log = logging.getLogger(__name__)


@dataclass
class _Buyer:
    envelope: Envelope
    event: OrderCreated
    identity: ChannelIdentity
    ident: NormalizedIdentity
    customer_id: uuid.UUID | None = None
    matched_by: str = ""


_ORDERS = text(
    "INSERT INTO customer_orders (order_id, customer_id, channel, total, currency, item_count,"
    " delivery_requirements, status, ordered_at)"
    " SELECT o, c, ch, t, cur, n, r::jsonb, 'created', at FROM unnest(CAST(:orders AS uuid[]),"
    " CAST(:customers AS uuid[]), CAST(:channels AS text[]), CAST(:totals AS numeric[]),"
    " CAST(:currencies AS text[]), CAST(:items AS int[]), CAST(:requirements AS text[]),"
    " CAST(:at AS timestamptz[])) AS x(o, c, ch, t, cur, n, r, at)"
    " ON CONFLICT DO NOTHING RETURNING order_id"
)
_TOTALS = text(
    "INSERT INTO customer_totals (customer_id, order_count, lifetime_value, last_order_at,"
    " channels, complaints)"
    " SELECT c, n, v, t, ch::jsonb, 0 FROM unnest(CAST(:customers AS uuid[]),"
    " CAST(:counts AS int[]), CAST(:values AS numeric[]), CAST(:lasts AS timestamptz[]),"
    " CAST(:channels AS text[])) AS x(c, n, v, t, ch) ORDER BY c"
    " ON CONFLICT (customer_id) DO UPDATE SET"
    " order_count = customer_totals.order_count + excluded.order_count,"
    " lifetime_value = customer_totals.lifetime_value + excluded.lifetime_value,"
    " last_order_at = greatest(customer_totals.last_order_at, excluded.last_order_at),"
    " channels = customer_totals.channels || (SELECT coalesce(jsonb_object_agg(e.k,"
    " coalesce((customer_totals.channels ->> e.k)::int, 0) + e.v::int), '{}'::jsonb)"
    " FROM jsonb_each_text(excluded.channels) AS e(k, v))"
)
_TALLIES = text(
    "INSERT INTO customer_day_tallies (customer_id, day, cold_chain_orders, cold_chain_items,"
    " fragile_orders, fragile_items)"
    " SELECT * FROM unnest(CAST(:customers AS uuid[]), CAST(:days AS date[]),"
    " CAST(:co AS int[]), CAST(:ci AS int[]), CAST(:fo AS int[]), CAST(:fi AS int[]))"
    " ORDER BY 1, 2 ON CONFLICT (customer_id, day) DO UPDATE SET"
    " cold_chain_orders = customer_day_tallies.cold_chain_orders + excluded.cold_chain_orders,"
    " cold_chain_items = customer_day_tallies.cold_chain_items + excluded.cold_chain_items,"
    " fragile_orders = customer_day_tallies.fragile_orders + excluded.fragile_orders,"
    " fragile_items = customer_day_tallies.fragile_items + excluded.fragile_items"
)


async def on_orders_created(uow: UnitOfWork, items: list[tuple[Envelope, Event]]) -> None:
    buyers = [_buyer(envelope, event) for envelope, event in items]
    resolutions = await resolve_identities(uow, [b.identity for b in buyers])
    for buyer, answer in zip(buyers, resolutions.resolved, strict=True):
        buyer.customer_id, buyer.matched_by = answer.customer_id, answer.matched_by
    await _record_orders(uow, buyers)
    new = set(resolutions.created)
    for buyer in buyers:
        if not _first_order_of_new_customer(buyer, new):
            continue
        assert buyer.customer_id is not None
        uow.caused_by(buyer.envelope)
        await uow.emit(
            CustomerUpdated(
                customer_id=buyer.customer_id,
                changed_fields=["created"],
                updated_at=datetime.now(UTC),
            )
        )
    detailed = log.isEnabledFor(logging.DEBUG)  # the per-order line, built only if kept
    for buyer in buyers:
        assert buyer.customer_id is not None
        uow.caused_by(buyer.envelope)
        await uow.emit(
            CustomerResolved(
                customer_id=buyer.customer_id,
                order_id=buyer.event.order_id,
                channel=buyer.event.channel,
                platform_user_id=buyer.event.customer.platform_user_id,
                new_customer=_first_order_of_new_customer(buyer, new),
                resolved_at=datetime.now(UTC),
            )
        )
        if detailed:
            log.debug(
                "customer resolved",
                extra={
                    "customer_id": str(buyer.customer_id),
                    "channel": buyer.ident.channel,
                    "platform_user_id": mask(buyer.ident.platform_user_id),
                    "matched_by": buyer.matched_by,
                },
            )
    # One line per run at INFO, not one per order: a promotion day's 50,000 lines said
    # nothing the events do not, and cost about 4 % of the service's time.
    log.info(
        "customers resolved",
        extra={
            "orders": len(buyers),
            "new_customers": len(new),
            "matched_by": dict(Counter(buyer.matched_by for buyer in buyers)),
        },
    )


def _first_order_of_new_customer(buyer: _Buyer, new: set[uuid.UUID]) -> bool:
    """The buyer's customer was created by this run, for this order."""
    return buyer.customer_id in new and buyer.matched_by == "new"


def buyer_identity(event: OrderCreated) -> ChannelIdentity:
    """The order's buyer as the channel knows them, with the delivery address."""
    person = event.customer
    return ChannelIdentity(
        channel=event.channel,
        platform_user_id=person.platform_user_id,
        name=person.name,
        phone=person.phone,
        email=person.email,
        address=event.shipping_address.model_dump(exclude={"name", "phone"}),
    )


def _buyer(envelope: Envelope, event: Event) -> _Buyer:
    assert isinstance(event, OrderCreated)
    identity = buyer_identity(event)
    return _Buyer(envelope, event, identity, identity.normalized())


async def _record_orders(uow: UnitOfWork, buyers: list[_Buyer]) -> None:
    session = uow.session
    firsts: dict[uuid.UUID, _Buyer] = {}
    for buyer in buyers:
        firsts.setdefault(buyer.event.order_id, buyer)  # the first copy of an order counts
    rows = list(firsts.values())
    recorded = {
        r[0]
        for r in await session.execute(
            _ORDERS,
            {
                "orders": [b.event.order_id for b in rows],
                "customers": [b.customer_id for b in rows],
                "channels": [b.event.channel for b in rows],
                "totals": [b.event.total for b in rows],
                "currencies": [b.event.currency for b in rows],
                "items": [sum(line.qty for line in b.event.lines) for b in rows],
                "requirements": [
                    json.dumps(sorted(set(b.event.delivery_requirements))) for b in rows
                ],
                "at": [b.event.created_at for b in rows],
            },
        )
    }
    totals: dict[uuid.UUID, dict[str, Any]] = {}
    tallies: dict[tuple[uuid.UUID, Any], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for buyer in rows:
        if buyer.event.order_id not in recorded:
            continue
        event, customer_id = buyer.event, buyer.customer_id
        assert customer_id is not None
        t = totals.setdefault(
            customer_id, {"n": 0, "v": 0, "last": event.created_at, "channels": {}}
        )
        t["n"] += 1
        t["v"] += event.total
        t["last"] = max(t["last"], event.created_at)
        t["channels"][event.channel] = t["channels"].get(event.channel, 0) + 1
        items = sum(line.qty for line in event.lines)
        cold = COLD_CHAIN in event.delivery_requirements
        fragile = FRAGILE in event.delivery_requirements
        if cold or fragile:
            tally = tallies[(customer_id, event.created_at.astimezone(UTC).date())]
            tally[0] += 1 if cold else 0
            tally[1] += items if cold else 0
            tally[2] += 1 if fragile else 0
            tally[3] += items if fragile else 0
        await apply_tag_rules_at_commit(uow, customer_id)
    if totals:
        await session.execute(
            _TOTALS,
            {
                "customers": list(totals),
                "counts": [t["n"] for t in totals.values()],
                "values": [t["v"] for t in totals.values()],
                "lasts": [t["last"] for t in totals.values()],
                "channels": [json.dumps(t["channels"]) for t in totals.values()],
            },
        )
    if tallies:
        keys = list(tallies)
        await session.execute(
            _TALLIES,
            {
                "customers": [c for c, _ in keys],
                "days": [d for _, d in keys],
                "co": [tallies[k][0] for k in keys],
                "ci": [tallies[k][1] for k in keys],
                "fo": [tallies[k][2] for k in keys],
                "fi": [tallies[k][3] for k in keys],
            },
        )
