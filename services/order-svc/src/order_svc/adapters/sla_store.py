"""SLA clocks in PostgreSQL: opened and ended with the order, claimed by the scheduler.

Every statement runs in the caller's unit of work, so a clock changes in the same
transaction as the order (and the alert it causes).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from order_svc.adapters.tables import order_sla, orders
from order_svc.domain.sla import Deadline


@dataclass(frozen=True)
class Clock:
    """An open stage clock as the scheduler sees it."""

    order_id: uuid.UUID
    stage: str
    channel: str
    order_class: str
    deadline: Deadline
    at_risk_sent: bool
    breached_sent: bool


_START_MANY = text(
    "INSERT INTO order_sla (order_id, stage, channel, order_class, started_at, deadline_at,"
    " at_risk_at) SELECT * FROM unnest(CAST(:orders AS uuid[]), CAST(:stages AS text[]),"
    " CAST(:channels AS text[]), CAST(:classes AS text[]), CAST(:started AS timestamptz[]),"
    " CAST(:deadlines AS timestamptz[]), CAST(:at_risk AS timestamptz[]))"
    " ON CONFLICT (order_id, stage) DO NOTHING"
)
_END_MANY = text(
    "UPDATE order_sla SET ended_at = x.at, ended_state = x.state"
    " FROM unnest(CAST(:orders AS uuid[]), CAST(:stages AS text[]),"
    " CAST(:at AS timestamptz[]), CAST(:states AS text[])) AS x(o, s, at, state)"
    " WHERE order_sla.order_id = x.o AND order_sla.stage = x.s AND order_sla.ended_at IS NULL"
)


class SlaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def start(
        self, order_id: uuid.UUID, channel: str, order_class: str, deadline: Deadline
    ) -> None:
        """Start a stage's clock; a stage runs once per order, so a second start is a no-op."""
        await self._session.execute(
            pg_insert(order_sla)
            .values(
                order_id=order_id,
                stage=deadline.stage,
                channel=channel,
                order_class=order_class,
                started_at=deadline.started_at,
                deadline_at=deadline.deadline_at,
                at_risk_at=deadline.at_risk_at,
            )
            .on_conflict_do_nothing(index_elements=["order_id", "stage"])
        )

    async def start_many(self, clocks: list[tuple[uuid.UUID, str, str, Deadline]]) -> None:
        """:meth:`start` for many clocks in one statement (order id, channel, class)."""
        if clocks:
            await self._session.execute(
                _START_MANY,
                {
                    "orders": [o for o, _, _, _ in clocks],
                    "stages": [d.stage for _, _, _, d in clocks],
                    "channels": [ch for _, ch, _, _ in clocks],
                    "classes": [cls for _, _, cls, _ in clocks],
                    "started": [d.started_at for _, _, _, d in clocks],
                    "deadlines": [d.deadline_at for _, _, _, d in clocks],
                    "at_risk": [d.at_risk_at for _, _, _, d in clocks],
                },
            )

    async def end_many(self, stops: list[tuple[uuid.UUID, str, datetime, str]]) -> None:
        """:meth:`end` for many (order, stage) clocks in one statement."""
        if stops:
            await self._session.execute(
                _END_MANY,
                {
                    "orders": [o for o, _, _, _ in stops],
                    "stages": [st for _, st, _, _ in stops],
                    "at": [at for _, _, at, _ in stops],
                    "states": [state for _, _, _, state in stops],
                },
            )

    async def end(self, order_id: uuid.UUID, stages: list[str], at: datetime, state: str) -> None:
        """Stop the open clocks of ``stages``; an ended clock is never alerted."""
        await self._session.execute(
            update(order_sla)
            .where(
                order_sla.c.order_id == order_id,
                order_sla.c.stage.in_(stages),
                order_sla.c.ended_at.is_(None),
            )
            .values(ended_at=at, ended_state=state)
        )

    @staticmethod
    def _owing(now: datetime) -> list[ColumnElement[bool]]:
        """An open clock owing an alert at ``now`` (a warning or the breach)."""
        return [
            order_sla.c.ended_at.is_(None),
            order_sla.c.breached_sent_at.is_(None),
            order_sla.c.at_risk_at <= now,
            or_(order_sla.c.at_risk_sent_at.is_(None), order_sla.c.deadline_at <= now),
        ]

    async def due(
        self, now: datetime, limit: int, *, skip: Collection[tuple[uuid.UUID, str]] = ()
    ) -> list[tuple[uuid.UUID, str]]:
        """Keys (order, stage) of clocks owing an alert, most pressing first, unlocked.

        ``skip`` leaves out clocks this run already tried, so a clock whose alert fails
        (or that another replica holds) never hides the ones behind it.
        """
        query = select(order_sla.c.order_id, order_sla.c.stage).where(*self._owing(now))
        if skip:
            query = query.where(tuple_(order_sla.c.order_id, order_sla.c.stage).not_in(list(skip)))
        rows = await self._session.execute(query.order_by(order_sla.c.at_risk_at).limit(limit))
        return [(r.order_id, r.stage) for r in rows]

    async def claim(self, order_id: uuid.UUID, stage: str, now: datetime) -> Clock | None:
        """That clock, locked, if it still owes an alert; None when it no longer does or
        another replica holds it (it sends that alert)."""
        row = (
            await self._session.execute(
                select(order_sla)
                .where(order_sla.c.order_id == order_id, order_sla.c.stage == stage)
                .where(*self._owing(now))
                .with_for_update(skip_locked=True)
            )
        ).first()
        return None if row is None else self._clock(row)

    async def claim_due(self, now: datetime, limit: int) -> list[Clock]:
        """Open clocks owing an alert, locked; rows another replica holds are skipped."""
        rows = await self._session.execute(
            select(order_sla)
            .where(*self._owing(now))
            .order_by(order_sla.c.at_risk_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [self._clock(r) for r in rows]

    @staticmethod
    def _clock(r: Any) -> Clock:
        return Clock(
            order_id=r.order_id,
            stage=r.stage,
            channel=r.channel,
            order_class=r.order_class,
            deadline=Deadline(r.stage, r.started_at, r.deadline_at),
            at_risk_sent=r.at_risk_sent_at is not None,
            breached_sent=r.breached_sent_at is not None,
        )

    async def mark_sent(
        self, clock: Clock, *, at: datetime, at_risk: bool = False, breached: bool = False
    ) -> None:
        values: dict[str, Any] = {}
        if at_risk:
            values["at_risk_sent_at"] = at
        if breached:
            values["breached_sent_at"] = at
        await self._session.execute(
            update(order_sla)
            .where(order_sla.c.order_id == clock.order_id, order_sla.c.stage == clock.stage)
            .values(**values)
        )

    async def for_order(self, order_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self._session.execute(
            select(order_sla)
            .where(order_sla.c.order_id == order_id)
            .order_by(order_sla.c.started_at)
        )
        return [dict(r._mapping) for r in rows]

    # -- read side ----------------------------------------------------------------------

    async def open_page(
        self, *, channel: str | None, stage: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Open clocks, the most urgent (closest to or furthest past the deadline) first."""
        conditions: list[ColumnElement[bool]] = [order_sla.c.ended_at.is_(None)]
        if channel is not None:
            conditions.append(order_sla.c.channel == channel)
        if stage is not None:
            conditions.append(order_sla.c.stage == stage)
        where = and_(*conditions)
        rows = await self._session.execute(
            select(order_sla, orders.c.state, orders.c.channel_order_id)
            .select_from(order_sla.outerjoin(orders, orders.c.id == order_sla.c.order_id))
            .where(where)
            .order_by(order_sla.c.deadline_at, order_sla.c.order_id, order_sla.c.stage)
            .limit(limit)
            .offset(offset)
        )
        total = (
            await self._session.execute(select(func.count()).select_from(order_sla).where(where))
        ).scalar_one()
        return [dict(r._mapping) for r in rows], total

    async def report(self, start: datetime, end: datetime, now: datetime) -> list[dict[str, Any]]:
        """Time in stage per stage, channel and class (and per stage over all of them).

        Two kinds of stage, told apart by ``kind``: every order state (time in it = the
        next transition's time minus this one's, over stays that have ended) and every
        SLA stage (started to met; a breach is a clock past its deadline, whether it
        ended late or is still open). Stays and clocks count in the window they
        *started* in. Percentiles are computed by PostgreSQL (``percentile_cont``);
        rows whose channel and class are null are the stage's totals.
        """
        result = await self._session.execute(
            text(_REPORT_SQL), {"start": start, "end": end, "now": now}
        )
        return [dict(r._mapping) for r in result]


_REPORT_SQL = """
WITH stays AS (
    SELECT 'state' AS kind,
           t.to_state AS stage,
           o.channel,
           o.priority AS order_class,
           EXTRACT(EPOCH FROM (
               LEAD(t.at) OVER (PARTITION BY t.order_id ORDER BY t.at, t.id) - t.at
           ))::float8 AS seconds,
           NULL::boolean AS breached,
           t.at AS started_at
      FROM order_transitions t
      JOIN orders o ON o.id = t.order_id
     WHERE t.order_id IN (
           SELECT order_id FROM order_transitions WHERE at >= :start AND at < :end
     )
),
state_stays AS (
    SELECT kind, stage, channel, order_class, seconds, breached
      FROM stays
     WHERE started_at >= :start AND started_at < :end AND seconds IS NOT NULL
),
sla_stays AS (
    SELECT 'sla' AS kind,
           s.stage,
           s.channel,
           s.order_class,
           CASE WHEN s.ended_at IS NOT NULL AND s.ended_state NOT IN ('cancelled', 'refunded')
                THEN EXTRACT(EPOCH FROM (s.ended_at - s.started_at))::float8 END AS seconds,
           CASE WHEN COALESCE(s.ended_at, :now) > s.deadline_at THEN TRUE
                WHEN s.ended_at IS NOT NULL AND s.ended_state NOT IN ('cancelled', 'refunded')
                THEN FALSE END AS breached
      FROM order_sla s
     WHERE s.started_at >= :start AND s.started_at < :end
),
everything AS (
    SELECT * FROM state_stays
    UNION ALL
    SELECT * FROM sla_stays
)
SELECT kind,
       stage,
       channel,
       order_class,
       count(seconds) AS count,
       avg(seconds) AS mean_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) AS p95_s,
       count(breached) AS decided,
       count(*) FILTER (WHERE breached) AS breached
  FROM everything
 GROUP BY GROUPING SETS ((kind, stage, channel, order_class), (kind, stage))
 ORDER BY kind, stage, channel NULLS FIRST, order_class NULLS FIRST
"""
