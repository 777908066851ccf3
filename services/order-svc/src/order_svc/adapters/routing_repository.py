"""Persistence of routing and customer data: the read models, the copies on orders, the
routing decisions, and the views the API shows.

Read-model upserts are guarded by the event's own time (``changed_at``/``updated_at``),
so an older event delivered late never overwrites a newer state.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from order_svc.adapters.routing_tables import (
    customer_identities,
    customer_profiles,
    order_customer_data,
    order_routes,
    routing_stock,
    routing_warehouses,
)
from order_svc.adapters.tables import orders
from order_svc.domain.routing import RoutingDecision, StockView, Warehouse

#: States in which an order still takes the customer's data.
CLOSED_STATES = ("shipped", "delivered", "cancelled", "refunded")


_MARK_ROUTED_MANY = text(
    "INSERT INTO order_routes (order_id, outcome, reason, decided_at, shipments, split,"
    " routed_at) SELECT x.id, 'deferred', 'routed before routing existed', :at, x.s::jsonb,"
    " jsonb_array_length(x.s::jsonb) > 1, :at"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:shipments AS text[])) AS x(id, s) ORDER BY x.id"
    " ON CONFLICT (order_id) DO UPDATE SET shipments = excluded.shipments,"
    " split = excluded.split, routed_at = excluded.routed_at"
)


#: A batch's routing decisions in one constant statement (prepared once; a multi-row
#: VALUES was compiled anew for every batch, 7 % of order-svc's time on a promotion day),
#: the columns of :func:`decision_row`.
_RECORD_DECISIONS = text(
    "INSERT INTO order_routes (order_id, outcome, reason, requirements, shipments,"
    " candidates, split, allow_split, excluded, attempts, decided_at, routed_at)"
    " SELECT o, oc, r, rq::jsonb, sh::jsonb, ca::jsonb, sp, al, ex::jsonb, n, d, ro"
    " FROM unnest(CAST(:orders AS uuid[]), CAST(:outcomes AS text[]),"
    " CAST(:reasons AS text[]), CAST(:requirements AS text[]), CAST(:shipments AS text[]),"
    " CAST(:candidates AS text[]), CAST(:splits AS boolean[]), CAST(:allow AS boolean[]),"
    " CAST(:excluded AS text[]), CAST(:attempts AS int[]), CAST(:decided AS timestamptz[]),"
    " CAST(:routed AS timestamptz[])) AS x(o, oc, r, rq, sh, ca, sp, al, ex, n, d, ro)"
    " ORDER BY o"
    " ON CONFLICT (order_id) DO UPDATE SET outcome = excluded.outcome,"
    " reason = excluded.reason, requirements = excluded.requirements,"
    " shipments = excluded.shipments, candidates = excluded.candidates,"
    " split = excluded.split, allow_split = excluded.allow_split,"
    " excluded = excluded.excluded, attempts = excluded.attempts,"
    " decided_at = excluded.decided_at, routed_at = excluded.routed_at"
)


def decision_row(
    order_id: uuid.UUID,
    decision: RoutingDecision,
    *,
    allow_split: bool,
    excluded: list[str],
    attempts: int,
    at: datetime,
) -> dict[str, Any]:
    """A routing decision as ``order_routes`` stores it."""
    values: dict[str, Any] = {
        "outcome": decision.outcome,
        "reason": decision.reason,
        "requirements": list(decision.requirements),
        "shipments": [
            {
                "warehouse": s.warehouse,
                "line_nos": list(s.line_nos),
                "score": s.score,
                "distance_km": s.distance_km,
                "shipping_cost": None if s.shipping_cost is None else str(s.shipping_cost),
            }
            for s in decision.shipments
        ],
        "candidates": [
            {
                "warehouse": c.warehouse,
                "score": c.score,
                "stock_fit": c.stock_fit,
                "distance_km": c.distance_km,
                "shipping_cost": None if c.shipping_cost is None else str(c.shipping_cost),
            }
            for c in decision.candidates
        ],
        "split": decision.split,
        "allow_split": allow_split,
        "excluded": sorted(excluded),
        "attempts": attempts,
        "decided_at": at,
        "routed_at": None,
    }
    return {"order_id": order_id, **values}


_CUSTOMERS_OF = text(
    "SELECT i.channel, i.platform_user_id, i.customer_id FROM customer_identities i"
    " JOIN unnest(CAST(:channels AS text[]), CAST(:users AS text[])) AS x(c, u)"
    " ON i.channel = x.c AND i.platform_user_id = x.u"
)
_COPY_MANY = text(
    "INSERT INTO order_customer_data (order_id, customer_id, delivery_requirements, tags,"
    " source, profile_updated_at, copied_at)"
    " SELECT o, c, r::jsonb, t::jsonb, :source, u, :at FROM unnest(CAST(:orders AS uuid[]),"
    " CAST(:customers AS uuid[]), CAST(:requirements AS text[]), CAST(:tags AS text[]),"
    " CAST(:updated AS timestamptz[])) AS x(o, c, r, t, u) ORDER BY o"
    " ON CONFLICT (order_id) DO UPDATE SET customer_id = excluded.customer_id,"
    " delivery_requirements = excluded.delivery_requirements, tags = excluded.tags,"
    " source = excluded.source, profile_updated_at = excluded.profile_updated_at,"
    " copied_at = excluded.copied_at"
    " WHERE order_customer_data.profile_updated_at < excluded.profile_updated_at"
    " OR order_customer_data.customer_id <> excluded.customer_id"
)

#: The transaction cache's key for :meth:`RoutingRepository.warehouses` (a batch of orders
#: routes on one read; a WarehouseUpdated in the batch forgets it).
WAREHOUSES_KEY = "routing:warehouses"


class RoutingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- warehouses and stock (from inventory-svc) ---------------------------------------

    async def upsert_warehouse(self, values: dict[str, Any]) -> None:
        stmt = pg_insert(routing_warehouses).values(**values)
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[routing_warehouses.c.code],
                set_={k: stmt.excluded[k] for k in values if k != "code"},
                where=routing_warehouses.c.updated_at <= stmt.excluded.updated_at,
            )
        )

    async def upsert_stock(
        self, sku: str, warehouse: str, on_hand: int, reserved: int, available: int, at: datetime
    ) -> None:
        stmt = pg_insert(routing_stock).values(
            sku=sku,
            warehouse=warehouse,
            on_hand=on_hand,
            reserved=reserved,
            available=available,
            changed_at=at,
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[routing_stock.c.sku, routing_stock.c.warehouse],
                set_={
                    "on_hand": stmt.excluded.on_hand,
                    "reserved": stmt.excluded.reserved,
                    "available": stmt.excluded.available,
                    "changed_at": stmt.excluded.changed_at,
                },
                where=routing_stock.c.changed_at <= stmt.excluded.changed_at,
            )
        )

    async def warehouses(self) -> list[Warehouse]:
        rows = await self._session.execute(
            select(routing_warehouses).order_by(routing_warehouses.c.code)
        )
        return [
            Warehouse(
                code=r.code,
                region=r.region,
                latitude=r.latitude,
                longitude=r.longitude,
                capabilities=frozenset(r.capabilities or []),
                shipping_costs={k: Decimal(str(v)) for k, v in (r.shipping_costs or {}).items()},
            )
            for r in rows
        ]

    async def warehouse_rows(self) -> list[dict[str, Any]]:
        rows = await self._session.execute(
            select(routing_warehouses).order_by(routing_warehouses.c.code)
        )
        return [dict(r._mapping) for r in rows]

    async def stock(self, skus: Iterable[str]) -> StockView:
        rows = await self._session.execute(
            select(routing_stock.c.sku, routing_stock.c.warehouse, routing_stock.c.available).where(
                routing_stock.c.sku.in_(sorted(set(skus)))
            )
        )
        return StockView({(r.sku, r.warehouse): r.available for r in rows})

    # -- customers (from customer-svc) ----------------------------------------------------

    async def link_identity(
        self, channel: str, platform_user_id: str, customer_id: uuid.UUID, at: datetime
    ) -> None:
        stmt = pg_insert(customer_identities).values(
            channel=channel,
            platform_user_id=platform_user_id,
            customer_id=customer_id,
            resolved_at=at,
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    customer_identities.c.channel,
                    customer_identities.c.platform_user_id,
                ],
                set_={
                    "customer_id": stmt.excluded.customer_id,
                    "resolved_at": stmt.excluded.resolved_at,
                },
                where=customer_identities.c.resolved_at <= stmt.excluded.resolved_at,
            )
        )

    async def customers_of(self, buyers: set[tuple[str, str]]) -> dict[tuple[str, str], uuid.UUID]:
        """The customer each known (channel, platform user id) is linked to (merges not
        followed: see :meth:`surviving_many`)."""
        if not buyers:
            return {}
        ordered = sorted(buyers)
        rows = await self._session.execute(
            _CUSTOMERS_OF,
            {"channels": [c for c, _ in ordered], "users": [u for _, u in ordered]},
        )
        return {(r.channel, r.platform_user_id): r.customer_id for r in rows}

    async def customer_of(self, channel: str, platform_user_id: str) -> uuid.UUID | None:
        row = (
            await self._session.execute(
                select(customer_identities.c.customer_id).where(
                    customer_identities.c.channel == channel,
                    customer_identities.c.platform_user_id == platform_user_id,
                )
            )
        ).first()
        return None if row is None else await self.surviving(row.customer_id)

    async def surviving(self, customer_id: uuid.UUID) -> uuid.UUID:
        """The id the customer lives on (merges followed, a few hops at most)."""
        for _ in range(10):
            merged_into = (
                await self._session.execute(
                    select(customer_profiles.c.merged_into).where(
                        customer_profiles.c.customer_id == customer_id
                    )
                )
            ).scalar_one_or_none()
            if merged_into is None:
                return customer_id
            customer_id = merged_into
        return customer_id

    async def upsert_profile(
        self,
        customer_id: uuid.UUID,
        requirements: list[str],
        tags: list[str],
        at: datetime,
    ) -> bool:
        """Store the profile unless a newer one is stored; True if stored."""
        stmt = pg_insert(customer_profiles).values(
            customer_id=customer_id, delivery_requirements=requirements, tags=tags, updated_at=at
        )
        result = await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[customer_profiles.c.customer_id],
                set_={
                    "delivery_requirements": stmt.excluded.delivery_requirements,
                    "tags": stmt.excluded.tags,
                    "updated_at": stmt.excluded.updated_at,
                },
                where=customer_profiles.c.updated_at <= stmt.excluded.updated_at,
            ).returning(customer_profiles.c.customer_id)
        )
        return result.first() is not None

    async def surviving_many(self, customer_ids: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """:meth:`surviving` for many customers (a statement per hop; merges are rare)."""
        surviving = {c: c for c in customer_ids}
        pending = set(customer_ids)
        for _ in range(10):
            if not pending:
                break
            rows = await self._session.execute(
                select(customer_profiles.c.customer_id, customer_profiles.c.merged_into).where(
                    customer_profiles.c.customer_id.in_(sorted(pending)),
                    customer_profiles.c.merged_into.is_not(None),
                )
            )
            hops = {r.customer_id: r.merged_into for r in rows}
            for start, current in surviving.items():
                if current in hops:
                    surviving[start] = hops[current]
            pending = set(hops.values())
        return surviving

    async def profiles(self, customer_ids: set[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """:meth:`profile` for many customers in one statement."""
        rows = await self._session.execute(
            select(customer_profiles).where(
                customer_profiles.c.customer_id.in_(sorted(customer_ids))
            )
        )
        return {r.customer_id: dict(r._mapping) for r in rows}

    async def profile(self, customer_id: uuid.UUID) -> dict[str, Any] | None:
        row = (
            await self._session.execute(
                select(customer_profiles).where(customer_profiles.c.customer_id == customer_id)
            )
        ).first()
        return None if row is None else dict(row._mapping)

    async def merge_customer(
        self, merged_id: uuid.UUID, surviving_id: uuid.UUID, at: datetime
    ) -> None:
        """Orders, identities and the profile of ``merged_id`` follow ``surviving_id``."""
        await self._session.execute(
            update(orders).where(orders.c.customer_id == merged_id).values(customer_id=surviving_id)
        )
        await self._session.execute(
            update(customer_identities)
            .where(customer_identities.c.customer_id == merged_id)
            .values(customer_id=surviving_id)
        )
        stmt = pg_insert(customer_profiles).values(
            customer_id=merged_id, updated_at=at, merged_into=surviving_id
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[customer_profiles.c.customer_id],
                set_={"merged_into": surviving_id},
            )
        )

    async def open_orders_of(self, customer_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self._session.execute(
            select(orders.c.id)
            .where(orders.c.customer_id == customer_id, orders.c.state.not_in(CLOSED_STATES))
            .order_by(orders.c.id)
        )
        return [r.id for r in rows]

    async def copy_to_order(
        self,
        order_id: uuid.UUID,
        customer_id: uuid.UUID,
        profile: dict[str, Any],
        source: str,
        at: datetime,
    ) -> None:
        """Copy the profile onto the order, unless this version (or a newer one) of the
        customer's profile is there already: the first copy's source and time stand."""
        stmt = pg_insert(order_customer_data).values(
            order_id=order_id,
            customer_id=customer_id,
            delivery_requirements=list(profile["delivery_requirements"] or []),
            tags=list(profile["tags"] or []),
            source=source,
            profile_updated_at=profile["updated_at"],
            copied_at=at,
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[order_customer_data.c.order_id],
                set_={
                    k: stmt.excluded[k]
                    for k in (
                        "customer_id",
                        "delivery_requirements",
                        "tags",
                        "source",
                        "profile_updated_at",
                        "copied_at",
                    )
                },
                where=(order_customer_data.c.profile_updated_at < stmt.excluded.profile_updated_at)
                | (order_customer_data.c.customer_id != stmt.excluded.customer_id),
            )
        )

    async def copy_many(
        self, copies: list[tuple[uuid.UUID, uuid.UUID, dict[str, Any]]], source: str, at: datetime
    ) -> None:
        """:meth:`copy_to_order` for many (order, customer, profile), one per order."""
        if copies:
            await self._session.execute(
                _COPY_MANY,
                {
                    "orders": [o for o, _, _ in copies],
                    "customers": [c for _, c, _ in copies],
                    "requirements": [
                        json.dumps(list(p["delivery_requirements"] or [])) for _, _, p in copies
                    ],
                    "tags": [json.dumps(list(p["tags"] or [])) for _, _, p in copies],
                    "updated": [p["updated_at"] for _, _, p in copies],
                    "source": source,
                    "at": at,
                },
            )

    async def customer_requirements_of(
        self, order_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]:
        """:meth:`customer_requirements` of many orders in one statement."""
        rows = await self._session.execute(
            select(
                order_customer_data.c.order_id, order_customer_data.c.delivery_requirements
            ).where(order_customer_data.c.order_id.in_(order_ids))
        )
        return {r.order_id: list(r.delivery_requirements or []) for r in rows}

    async def customer_requirements(self, order_id: uuid.UUID) -> list[str]:
        row = (
            await self._session.execute(
                select(order_customer_data.c.delivery_requirements).where(
                    order_customer_data.c.order_id == order_id
                )
            )
        ).first()
        return [] if row is None else list(row.delivery_requirements or [])

    # -- routing decisions ---------------------------------------------------------------

    async def routes_of(self, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """:meth:`route_of` for many orders in one statement (orders without one left out)."""
        rows = await self._session.execute(
            select(order_routes).where(order_routes.c.order_id.in_(order_ids))
        )
        return {row.order_id: dict(row._mapping) for row in rows}

    async def mark_routed_many(
        self, routed: list[tuple[uuid.UUID, list[dict[str, Any]]]], at: datetime
    ) -> None:
        """:meth:`mark_routed` for many orders in one statement."""
        if routed:
            await self._session.execute(
                _MARK_ROUTED_MANY,
                {
                    "ids": [order_id for order_id, _ in routed],
                    "shipments": [json.dumps(shipments) for _, shipments in routed],
                    "at": at,
                },
            )

    async def route_of(self, order_id: uuid.UUID) -> dict[str, Any] | None:
        row = (
            await self._session.execute(
                select(order_routes).where(order_routes.c.order_id == order_id)
            )
        ).first()
        return None if row is None else dict(row._mapping)

    async def record_decision(
        self,
        order_id: uuid.UUID,
        decision: RoutingDecision,
        *,
        allow_split: bool,
        excluded: list[str],
        attempts: int,
        at: datetime,
    ) -> None:
        await self.record_decisions(
            [
                decision_row(
                    order_id,
                    decision,
                    allow_split=allow_split,
                    excluded=excluded,
                    attempts=attempts,
                    at=at,
                )
            ]
        )

    async def record_decisions(self, rows: list[dict[str, Any]]) -> None:
        """Store routing decisions (:func:`decision_row`), the last one per order standing."""
        last = {row["order_id"]: row for row in rows}
        if not last:
            return
        rows = list(last.values())
        await self._session.execute(
            _RECORD_DECISIONS,
            {
                "orders": [r["order_id"] for r in rows],
                "outcomes": [r["outcome"] for r in rows],
                "reasons": [r["reason"] for r in rows],
                "requirements": [json.dumps(r["requirements"]) for r in rows],
                "shipments": [json.dumps(r["shipments"]) for r in rows],
                "candidates": [json.dumps(r["candidates"]) for r in rows],
                "splits": [r["split"] for r in rows],
                "allow": [r["allow_split"] for r in rows],
                "excluded": [json.dumps(r["excluded"]) for r in rows],
                "attempts": [r["attempts"] for r in rows],
                "decided": [r["decided_at"] for r in rows],
                "routed": [r["routed_at"] for r in rows],
            },
        )

    async def mark_routed(
        self, order_id: uuid.UUID, shipments: list[dict[str, Any]], at: datetime
    ) -> None:
        """The stock is held: store the final parcels (where inventory actually holds it)."""
        values = {"shipments": shipments, "split": len(shipments) > 1, "routed_at": at}
        stmt = pg_insert(order_routes).values(
            order_id=order_id,
            outcome="deferred",
            reason="routed before routing existed",
            decided_at=at,
            **values,
        )
        await self._session.execute(
            stmt.on_conflict_do_update(index_elements=[order_routes.c.order_id], set_=values)
        )

    # -- what the API shows ---------------------------------------------------------------

    async def order_extras(self, order_id: uuid.UUID) -> dict[str, Any]:
        """The routing decision and the customer's data of an order, for its views."""
        route = await self.route_of(order_id)
        data = (
            await self._session.execute(
                select(order_customer_data).where(order_customer_data.c.order_id == order_id)
            )
        ).first()
        return {
            "routing": None
            if route is None
            else {k: v for k, v in route.items() if k != "order_id"},
            "customer_requirements": [] if data is None else list(data.delivery_requirements or []),
            "customer_tags": [] if data is None else list(data.tags or []),
            "customer_data": None
            if data is None
            else {
                "customer_id": data.customer_id,
                "source": data.source,
                "profile_updated_at": data.profile_updated_at,
                "copied_at": data.copied_at,
            },
        }
