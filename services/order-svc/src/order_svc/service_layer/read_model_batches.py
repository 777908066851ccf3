"""Runs of read-model events applied set-based (``oms_messaging.BatchHandler``).

A promotion day brings one ``CustomerResolved`` and about one ``StockLevelChanged`` per
order. One by one they cost five to seven statements and one statement each; here a run
of hundreds costs a handful, with the same outcome as applying them in order with the
one-event handlers in ``order_svc.handlers`` and ``order_svc.read_models`` (which stay the
reference; ``tests/test_read_model_batches.py`` compares the two):

- stock levels: the newest level per (SKU, warehouse) of the run, in one upsert;
- resolutions: the buyers' identities linked in one upsert (the newest per identity),
  the orders given their customer in one update (the last resolution per order wins),
  and the customer's profile copied onto the open orders whose customer has one;
- profiles (``CustomerUpdated``: one per new customer on a promotion day): the newest
  profile per customer in one upsert, and copied onto the open orders of the customers
  whose profile it replaced, in one statement.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from oms_contracts import Envelope, Event
from oms_contracts.events import CustomerResolved, CustomerUpdated, StockLevelChanged
from oms_messaging import UnitOfWork
from order_svc.adapters.routing_repository import RoutingRepository
from order_svc.domain.order import OrderState

_CLOSED = [
    s.value
    for s in (OrderState.SHIPPED, OrderState.DELIVERED, OrderState.CANCELLED, OrderState.REFUNDED)
]

_UPSERT_STOCK = text(
    "INSERT INTO routing_stock (sku, warehouse, on_hand, reserved, available, changed_at)"
    " SELECT * FROM unnest(CAST(:skus AS text[]), CAST(:warehouses AS text[]),"
    " CAST(:on_hand AS int[]), CAST(:reserved AS int[]), CAST(:available AS int[]),"
    " CAST(:at AS timestamptz[])) ORDER BY 1, 2"
    " ON CONFLICT (sku, warehouse) DO UPDATE SET on_hand = excluded.on_hand,"
    " reserved = excluded.reserved, available = excluded.available,"
    " changed_at = excluded.changed_at"
    " WHERE routing_stock.changed_at <= excluded.changed_at"
)
_LOCK_ORDERS = text(
    "SELECT id, state, customer_id FROM orders WHERE id = ANY(CAST(:ids AS uuid[]))"
    " ORDER BY id FOR UPDATE"
)
_LINK_IDENTITIES = text(
    "INSERT INTO customer_identities (channel, platform_user_id, customer_id, resolved_at)"
    " SELECT * FROM unnest(CAST(:channels AS text[]), CAST(:users AS text[]),"
    " CAST(:customers AS uuid[]), CAST(:at AS timestamptz[])) ORDER BY 1, 2"
    " ON CONFLICT (channel, platform_user_id) DO UPDATE"
    " SET customer_id = excluded.customer_id, resolved_at = excluded.resolved_at"
    " WHERE customer_identities.resolved_at <= excluded.resolved_at"
)
_UPSERT_PROFILES = text(
    "INSERT INTO customer_profiles (customer_id, delivery_requirements, tags, updated_at)"
    " SELECT c, r::jsonb, t::jsonb, u FROM unnest(CAST(:customers AS uuid[]),"
    " CAST(:requirements AS text[]), CAST(:tags AS text[]), CAST(:at AS timestamptz[]))"
    " AS x(c, r, t, u) ORDER BY c"
    " ON CONFLICT (customer_id) DO UPDATE SET"
    " delivery_requirements = excluded.delivery_requirements, tags = excluded.tags,"
    " updated_at = excluded.updated_at"
    " WHERE customer_profiles.updated_at <= excluded.updated_at"
    " RETURNING customer_id, merged_into"
)
_OPEN_ORDERS_OF = text(
    "SELECT id, customer_id FROM orders WHERE customer_id = ANY(CAST(:customers AS uuid[]))"
    " AND state <> ALL(CAST(:closed AS text[])) ORDER BY id"
)
_SET_CUSTOMERS = text(
    "UPDATE orders SET customer_id = x.c, updated_at = now()"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:customers AS uuid[])) AS x(i, c)"
    " WHERE orders.id = x.i AND orders.customer_id IS DISTINCT FROM x.c"
)


async def on_stock_levels_changed(uow: UnitOfWork, items: list[tuple[Envelope, Event]]) -> None:
    newest: dict[tuple[str, str], StockLevelChanged] = {}
    for _, event in items:
        assert isinstance(event, StockLevelChanged)
        key = (event.sku, event.warehouse)
        if key not in newest or newest[key].changed_at <= event.changed_at:
            newest[key] = event
    levels = list(newest.values())
    await uow.session.execute(
        _UPSERT_STOCK,
        {
            "skus": [e.sku for e in levels],
            "warehouses": [e.warehouse for e in levels],
            "on_hand": [e.on_hand for e in levels],
            "reserved": [e.reserved for e in levels],
            "available": [e.available for e in levels],
            "at": [e.changed_at for e in levels],
        },
    )


async def on_customers_resolved(uow: UnitOfWork, items: list[tuple[Envelope, Event]]) -> None:
    events: list[CustomerResolved] = []
    for _, event in items:
        assert isinstance(event, CustomerResolved)
        events.append(event)
    session = uow.session
    ids = sorted({e.order_id for e in events})
    orders = {row.id: row for row in await session.execute(_LOCK_ORDERS, {"ids": ids})}
    identities: dict[tuple[str, str], CustomerResolved] = {}
    for event in events:
        key = (event.channel, event.platform_user_id)
        if key not in identities or identities[key].resolved_at <= event.resolved_at:
            identities[key] = event
    linked = list(identities.values())
    await session.execute(
        _LINK_IDENTITIES,
        {
            "channels": [e.channel for e in linked],
            "users": [e.platform_user_id for e in linked],
            "customers": [e.customer_id for e in linked],
            "at": [e.resolved_at for e in linked],
        },
    )
    open_orders = [e for e in events if e.order_id in orders and _is_open(orders[e.order_id])]
    if open_orders:
        await _copy_profiles(uow, open_orders)
    last: dict[uuid.UUID, uuid.UUID] = {}
    for event in events:
        if event.order_id in orders:
            last[event.order_id] = event.customer_id
    changed = sorted(i for i, c in last.items() if orders[i].customer_id != c)
    if changed:
        await session.execute(
            _SET_CUSTOMERS, {"ids": changed, "customers": [last[i] for i in changed]}
        )


async def on_customers_updated(uow: UnitOfWork, items: list[tuple[Envelope, Event]]) -> None:
    """The newest profile of each customer stored (unless a newer one is), and copied onto
    the customer's open orders when it was stored and the customer is not merged away."""
    newest: dict[uuid.UUID, CustomerUpdated] = {}
    for _, event in items:
        assert isinstance(event, CustomerUpdated)
        known = newest.get(event.customer_id)
        if known is None or known.updated_at <= event.updated_at:
            newest[event.customer_id] = event
    profiles = {
        c: {
            "delivery_requirements": sorted(set(e.delivery_requirements)),
            "tags": sorted(set(e.tags)),
            "updated_at": e.updated_at,
        }
        for c, e in sorted(newest.items())
    }
    session = uow.session
    stored = await session.execute(
        _UPSERT_PROFILES,
        {
            "customers": list(profiles),
            "requirements": [json.dumps(p["delivery_requirements"]) for p in profiles.values()],
            "tags": [json.dumps(p["tags"]) for p in profiles.values()],
            "at": [p["updated_at"] for p in profiles.values()],
        },
    )
    copied = sorted(row.customer_id for row in stored if row.merged_into is None)
    if not copied:
        return
    open_orders = await session.execute(_OPEN_ORDERS_OF, {"customers": copied, "closed": _CLOSED})
    await RoutingRepository(session).copy_many(
        [(row.id, row.customer_id, profiles[row.customer_id]) for row in open_orders],
        "updated",
        datetime.now(UTC),
    )


async def _copy_profiles(uow: UnitOfWork, resolved: list[CustomerResolved]) -> None:
    """The profile of the customer each open order's buyer lives on, copied onto the order
    (the last resolution of an order is the one that stands, as one by one)."""
    repo = RoutingRepository(uow.session)
    surviving = await repo.surviving_many({e.customer_id for e in resolved})
    profiles = await repo.profiles(set(surviving.values()))
    # One by one, a resolution to a customer without a profile copies nothing.
    last = {
        e.order_id: surviving[e.customer_id]
        for e in resolved
        if surviving[e.customer_id] in profiles
    }
    await repo.copy_many(
        [(o, c, profiles[c]) for o, c in sorted(last.items())],
        "resolved",
        datetime.now(UTC),
    )


def _is_open(row: Any) -> bool:
    return row.state not in _CLOSED
