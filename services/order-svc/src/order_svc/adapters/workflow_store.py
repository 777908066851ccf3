"""Workflow rules and per-order hold approvals in PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Text, Uuid, column, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from order_svc.adapters.routing_tables import order_customer_data
from order_svc.adapters.tables import (
    order_transitions,
    order_workflow_approvals,
    orders,
    workflow_rule_sets,
)


@dataclass(frozen=True)
class OrderContext:
    tags: list[str]
    requirements: list[str]
    approved: list[str]


_CONTEXTS = text(
    "SELECT x.id, d.tags, d.delivery_requirements, o.delivery_requirements,"
    " (SELECT array_agg(a.rule) FROM order_workflow_approvals a WHERE a.order_id = x.id)"
    " FROM unnest(CAST(:ids AS uuid[])) AS x(id)"
    " LEFT JOIN order_customer_data d ON d.order_id = x.id"
    " LEFT JOIN orders o ON o.id = x.id"
).columns(
    column("id", Uuid),
    column("tags", JSONB),
    column("customer_requirements", JSONB),
    column("order_requirements", JSONB),
    column("approved", ARRAY(Text)),
)


class WorkflowStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def active(self) -> dict[str, Any] | None:
        """The newest stored rule set (version, rules, set_by, set_at), None if none."""
        row = (
            await self._session.execute(
                select(workflow_rule_sets).order_by(workflow_rule_sets.c.version.desc()).limit(1)
            )
        ).first()
        return None if row is None else dict(row._mapping)

    async def lock_for_replace(self) -> None:
        """Hold off other replacements (not readers) until this transaction ends."""
        await self._session.execute(
            text("LOCK TABLE workflow_rule_sets IN SHARE ROW EXCLUSIVE MODE")
        )

    async def store(self, rules: list[dict[str, Any]], set_by: str, at: datetime) -> int:
        """Store a new version (the older ones stay, as the audit); returns its number."""
        version = (
            await self._session.execute(
                workflow_rule_sets.insert()
                .values(rules=rules, set_by=set_by, set_at=at)
                .returning(workflow_rule_sets.c.version)
            )
        ).scalar_one()
        return int(version)

    async def history(self, limit: int) -> list[dict[str, Any]]:
        rows = await self._session.execute(
            select(workflow_rule_sets).order_by(workflow_rule_sets.c.version.desc()).limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    async def approvals(self, order_id: uuid.UUID) -> list[str]:
        """The hold rules an operator approved for this order."""
        rows = await self._session.execute(
            select(order_workflow_approvals.c.rule).where(
                order_workflow_approvals.c.order_id == order_id
            )
        )
        return sorted(r.rule for r in rows)

    async def approve(
        self,
        order_id: uuid.UUID,
        rule: str,
        approved_by: str,
        at: datetime,
        exception_id: uuid.UUID | None,
    ) -> None:
        await self._session.execute(
            pg_insert(order_workflow_approvals)
            .values(
                order_id=order_id,
                rule=rule,
                approved_by=approved_by,
                approved_at=at,
                exception_id=exception_id,
            )
            .on_conflict_do_nothing()
        )

    async def holding_rule(self, order_id: uuid.UUID) -> str | None:
        """The rule that put the order in ``exception`` last, if a rule did."""
        actor = (
            await self._session.execute(
                select(order_transitions.c.actor)
                .where(
                    order_transitions.c.order_id == order_id,
                    order_transitions.c.to_state == "exception",
                )
                .order_by(order_transitions.c.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if actor is None or not str(actor).startswith("rule:"):
            return None
        return str(actor).removeprefix("rule:")

    async def contexts(self, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, OrderContext]:
        """:meth:`context` of many orders in one round trip (stored or not yet)."""
        rows = await self._session.execute(_CONTEXTS, {"ids": sorted(set(order_ids))})
        return {row[0]: _context(row[1], row[2], row[3], row[4]) for row in rows}

    async def context(self, order_id: uuid.UUID) -> OrderContext:
        """What the rules need besides the order itself, in one round trip: the
        customer's tags, the order's and the customer's delivery requirements, and the
        approved holds. Works before the order row is stored (at receipt)."""
        data = order_customer_data.c
        row = (
            await self._session.execute(
                select(
                    select(data.tags).where(data.order_id == order_id).scalar_subquery(),
                    select(data.delivery_requirements)
                    .where(data.order_id == order_id)
                    .scalar_subquery(),
                    select(orders.c.delivery_requirements)
                    .where(orders.c.id == order_id)
                    .scalar_subquery(),
                    select(func.array_agg(order_workflow_approvals.c.rule))
                    .where(order_workflow_approvals.c.order_id == order_id)
                    .scalar_subquery(),
                )
            )
        ).one()
        return _context(*row)


def _context(
    tags: list[str] | None,
    customer_requirements: list[str] | None,
    order_requirements: list[str] | None,
    approved: list[str] | None,
) -> OrderContext:
    return OrderContext(
        tags=sorted(tags or []),
        requirements=sorted(set(customer_requirements or []) | set(order_requirements or [])),
        approved=sorted(approved or []),
    )
