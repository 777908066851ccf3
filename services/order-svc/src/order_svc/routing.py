"""Routing in the order flow: route a paid order before its stock is reserved, announce
the decision once the stock is held, re-route when inventory refuses a pinned warehouse.

Routing proposes, inventory-svc disposes: the read models routing works on lag behind
the stock, so a pinned line may be refused ("insufficient"). The order is then re-routed
without the warehouses that refused it (up to ``max_attempts``), and finally handed to
inventory unpinned, exactly as before routing existed. A capability-restricted order
(cold chain) is never unpinned: with no eligible warehouse left it is "impossible".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from oms_contracts.events import OrderRouted, ReservedLine, RoutedShipment
from oms_messaging import UnitOfWork
from order_svc.adapters.routing_repository import (
    WAREHOUSES_KEY,
    RoutingRepository,
    decision_row,
)
from order_svc.adapters.tables import orders
from order_svc.domain.order import Order
from order_svc.domain.routing import (
    DEFAULT_CAPABILITY_REQUIREMENTS,
    REGION_CENTRES,
    RouteLine,
    RoutingDecision,
    Weights,
    route,
)
from order_svc.settings import OrderSettings


@dataclass(frozen=True)
class RoutingConfig:
    weights: Weights = field(default_factory=Weights)
    allow_split: bool = True
    split_by_channel: Mapping[str, bool] = field(default_factory=dict)
    capability_requirements: frozenset[str] = DEFAULT_CAPABILITY_REQUIREMENTS
    centres: Mapping[str, tuple[float, float]] = field(default_factory=lambda: REGION_CENTRES)
    max_attempts: int = 3

    def split_allowed(self, channel: str) -> bool:
        return self.split_by_channel.get(channel, self.allow_split)


def routing_config(settings: OrderSettings) -> RoutingConfig:
    return RoutingConfig(
        weights=Weights(
            stock=settings.routing_weight_stock,
            distance=settings.routing_weight_distance,
            cost=settings.routing_weight_cost,
        ),
        allow_split=settings.routing_allow_split,
        split_by_channel=dict(settings.routing_split_by_channel),
        capability_requirements=frozenset(settings.routing_capability_requirements),
        centres={**REGION_CENTRES, **settings.routing_region_centres},
        max_attempts=settings.routing_max_attempts,
    )


async def route_paid_order(
    uow: UnitOfWork,
    order: Order,
    config: RoutingConfig,
    now: datetime,
    *,
    region: str,
    requirements: Iterable[str],
    excluded: Iterable[str] = (),
    attempts: int = 1,
) -> RoutingDecision:
    """Route a paid order before OrderPaid asks for its stock.

    Routed: its lines are pinned to the chosen warehouses. Deferred: its lines are
    unpinned (inventory picks). Impossible: the order goes to the exception queue with
    ``routing_impossible (<detail>)``. The decision is stored either way; the caller
    publishes the transitions and, if the order is still paid, emits OrderPaid.
    """
    repo = RoutingRepository(uow.session)
    excluded = sorted(set(excluded))
    allow_split = config.split_allowed(order.channel)
    decision = route(
        [RouteLine(ln.line_no, ln.sku, ln.qty) for ln in order.lines],
        region=region,
        requirements=requirements,
        warehouses=await uow.cached(WAREHOUSES_KEY, repo.warehouses),
        stock=await uow.primed_or(
            ("routing:stock", order.id), lambda: repo.stock(ln.sku for ln in order.lines)
        ),
        allow_split=allow_split,
        weights=config.weights,
        capability_requirements=config.capability_requirements,
        centres=config.centres,
        excluded=excluded,
    )
    await record_at_commit(
        uow,
        decision_row(
            order.id,
            decision,
            allow_split=allow_split,
            excluded=excluded,
            attempts=attempts,
            at=now,
        ),
    )
    if decision.outcome == "routed":
        order.assign_warehouses(decision.warehouse_of())
    elif decision.outcome == "impossible":
        order.routing_impossible(decision.reason or "no warehouse can serve the order", now)
    else:
        order.assign_warehouses({})
    return decision


_DECISIONS = "routing:decisions"


async def record_at_commit(uow: UnitOfWork, row: dict[str, Any]) -> None:
    """Store a routing decision just before the transaction commits, all of a consumer
    batch's in one statement; a read of the decisions in the transaction flushes first
    (``UnitOfWork.flush``)."""

    async def new_buffer() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []

        async def write() -> None:
            uow.forget(_DECISIONS)
            await RoutingRepository(uow.session).record_decisions(rows)

        uow.before_commit(write)
        return rows

    (await uow.cached(_DECISIONS, new_buffer)).append(row)


async def prime_rerouting(uow: UnitOfWork, orders_: list[Order]) -> None:
    """What re-routing each of ``orders_`` reads (its stored decision, its region and
    requirements, the stock of its SKUs), read once for all and handed to each."""
    if not orders_:
        return
    await uow.flush()  # decisions of this transaction are written before they are read
    ids = [order.id for order in orders_]
    repo = RoutingRepository(uow.session)
    routes = await repo.routes_of(ids)
    rows = {
        row.id: row
        for row in await uow.session.execute(
            select(orders.c.id, orders.c.shipping_address, orders.c.delivery_requirements).where(
                orders.c.id.in_(ids)
            )
        )
    }
    customer = await repo.customer_requirements_of(ids)
    stock = await repo.stock({line.sku for order in orders_ for line in order.lines})
    for order in orders_:
        row = rows[order.id]
        region = str((row.shipping_address or {}).get("region") or "")
        own = set(row.delivery_requirements or [])
        skus = {line.sku for line in order.lines}
        uow.prime(("routing:route", order.id), routes.get(order.id))
        uow.prime(
            ("routing:inputs", order.id),
            (region, sorted(own | set(customer.get(order.id, [])))),
        )
        uow.prime(
            ("routing:stock", order.id),
            stock.only(skus),
        )


async def routing_inputs(uow: UnitOfWork, order_id: uuid.UUID) -> tuple[str, list[str]]:
    """The destination region and the requirements (the order's own and its customer's)
    of a stored order."""
    row = (
        await uow.session.execute(
            select(orders.c.shipping_address, orders.c.delivery_requirements).where(
                orders.c.id == order_id
            )
        )
    ).one()
    customer = await RoutingRepository(uow.session).customer_requirements(order_id)
    region = str((row.shipping_address or {}).get("region") or "")
    return region, sorted(set(row.delivery_requirements or []) | set(customer))


async def route_stored_order(
    uow: UnitOfWork,
    order: Order,
    config: RoutingConfig,
    now: datetime,
    *,
    excluded: Iterable[str] = (),
    attempts: int = 1,
) -> RoutingDecision:
    """:func:`route_paid_order` for an order already stored (after the credit check, on
    a re-route, or when an operator retries it)."""
    region, requirements = await uow.primed_or(
        ("routing:inputs", order.id), lambda: routing_inputs(uow, order.id)
    )
    return await route_paid_order(
        uow,
        order,
        config,
        now,
        region=region,
        requirements=requirements,
        excluded=excluded,
        attempts=attempts,
    )


async def reroute_after_refusal(
    uow: UnitOfWork,
    order: Order,
    refused_lines: Iterable[int],
    config: RoutingConfig,
    now: datetime,
) -> bool:
    """Inventory refused pinned lines for lack of stock: route again without the
    warehouses that refused. False when there is nothing to retry (no pinned line was
    refused); the caller then treats the refusal as final."""
    pinned = {ln.line_no: ln.warehouse for ln in order.lines if ln.warehouse}
    refused = {pinned[n] for n in refused_lines if n in pinned}
    if not refused:
        return False
    repo = RoutingRepository(uow.session)

    async def stored_route() -> dict[str, Any] | None:
        await uow.flush()  # decisions of this transaction are written before they are read
        return await repo.route_of(order.id)

    previous = await uow.primed_or(("routing:route", order.id), stored_route) or {}
    attempts = int(previous.get("attempts") or 1) + 1
    excluded = set(previous.get("excluded") or []) | refused
    if attempts > config.max_attempts:
        _region, requirements = await routing_inputs(uow, order.id)
        if set(requirements) & config.capability_requirements:
            return False  # a cold-chain order is never handed over unpinned
        decision = RoutingDecision(
            "deferred",
            reason=f"refused {attempts - 1} times: inventory picks",
            requirements=tuple(requirements),
        )
        await repo.record_decision(
            order.id,
            decision,
            allow_split=config.split_allowed(order.channel),
            excluded=sorted(excluded),
            attempts=attempts,
            at=now,
        )
        order.assign_warehouses({})
        return True
    await route_stored_order(uow, order, config, now, excluded=excluded, attempts=attempts)
    return True


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def announce_route(
    uow: UnitOfWork,
    order: Order,
    reserved: list[ReservedLine],
    config: RoutingConfig,
    now: datetime,
) -> OrderRouted:
    """The stock is held: store where (inventory's answer is the truth) and emit
    OrderRouted with each parcel's score. Moving the order on to ``routed`` is the
    workflow rules' business (order_svc.workflow)."""
    repo = RoutingRepository(uow.session)
    await uow.flush()  # decisions of this transaction are written before they are read
    event = routed_event(order, reserved, await repo.route_of(order.id) or {}, now)
    await repo.mark_routed(order.id, shipments_json(event), now)
    return event


def routed_event(
    order: Order, reserved: list[ReservedLine], route_row: Mapping[str, Any], now: datetime
) -> OrderRouted:
    """OrderRouted for the stock inventory holds: a parcel per warehouse, each with the
    score the routing decision gave it (no I/O)."""
    scores = {c["warehouse"]: c for c in route_row.get("candidates") or []}
    by_warehouse: dict[str, list[int]] = {}
    for line in sorted(reserved, key=lambda ln: ln.line_no):
        by_warehouse.setdefault(line.warehouse, []).append(line.line_no)
    shipments = [
        RoutedShipment(
            warehouse=wh,
            line_nos=line_nos,
            score=float(scores.get(wh, {}).get("score") or 0.0),
            distance_km=scores.get(wh, {}).get("distance_km"),
            shipping_cost=_decimal(scores.get(wh, {}).get("shipping_cost")),
        )
        for wh, line_nos in sorted(by_warehouse.items())
    ]
    return OrderRouted(
        order_id=order.id,
        channel=order.channel,
        shipments=shipments,
        split=len(shipments) > 1,
        requirements=list(route_row.get("requirements") or []),
        routed_at=now,
    )


def shipments_json(event: OrderRouted) -> list[dict[str, Any]]:
    """The parcels as ``order_routes.shipments`` stores them."""
    return [s.model_dump(mode="json") for s in event.shipments]
