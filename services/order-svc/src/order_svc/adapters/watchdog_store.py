"""What the order watchdog reads and writes in PostgreSQL.

How long an order has waited is read from facts other code already stores, in the
caller's unit of work:

- when the order entered its current state: its newest transition (``order_transitions``,
  written in the transaction that moved it);
- when a paid order last asked inventory for its stock: the newest OrderPaid in the
  outbox for the order since it entered ``paid`` (the envelope's ``occurred_at`` is taken
  on the same clock as the transition's time, in the same transaction);
- when a credit check runs out: its ``deadline_at`` (a re-queued check gets a new one).

The watchdog's own bookkeeping is ``order_watchdog``: the re-sends of the current wait
(a wait is the order's state and the time it entered it, so a later wait in the same
state counts from zero again).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Row,
    Table,
    Text,
    Uuid,
    bindparam,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

metadata = MetaData()

order_watchdog = Table(
    "order_watchdog",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("state", Text),
    Column("waiting_since", DateTime(timezone=True)),
    Column("resends", Integer),
    Column("last_resent_at", DateTime(timezone=True)),
    Column("stalled_at", DateTime(timezone=True)),
)


@dataclass(frozen=True)
class Wait:
    """An order waiting on another service, as the database shows it."""

    order_id: uuid.UUID
    state: str
    #: When the order entered ``state`` (the time of its newest transition).
    entered_at: datetime
    #: paid: when OrderPaid was last sent in this wait (None: the stock was never asked
    #: for, the order waits on its own rules); credit_check: when the check runs out.
    asked_at: datetime | None
    #: Re-sends already made in this wait, and the last one's time.
    resends: int
    last_resent_at: datetime | None
    #: The credit check's status (credit_check only; None when it has no row).
    check_status: str | None


# One row per order in a watched state, with the facts of its current wait. The
# ``:budget`` stands for the check's deadline where a check row is missing.
_WAITS = """
SELECT o.id AS order_id, o.state, last.at AS entered_at,
       CASE o.state
         WHEN 'paid' THEN (
           SELECT max((x.payload::jsonb ->> 'occurred_at')::timestamptz) FROM outbox x
            WHERE x.event_type = 'OrderPaid' AND x.key = o.id::text
              AND (x.payload::jsonb ->> 'occurred_at')::timestamptz >= last.at)
         ELSE COALESCE(c.deadline_at, last.at + make_interval(secs => :budget))
       END AS asked_at,
       COALESCE(w.resends, 0) AS resends, w.last_resent_at, c.status AS check_status,
       o.updated_at
  FROM orders o
 CROSS JOIN LATERAL (
       SELECT t.at FROM order_transitions t
        WHERE t.order_id = o.id ORDER BY t.id DESC LIMIT 1) last
  LEFT JOIN order_watchdog w
    ON w.order_id = o.id AND w.state = o.state AND w.waiting_since = last.at
  LEFT JOIN credit_checks c ON c.order_id = o.id
 WHERE o.state IN ('paid', 'credit_check')
"""


def _wait(row: Row[Any]) -> Wait:
    return Wait(
        order_id=row.order_id,
        state=row.state,
        entered_at=row.entered_at,
        asked_at=row.asked_at,
        resends=row.resends,
        last_resent_at=row.last_resent_at,
        check_status=row.check_status,
    )


class WatchdogStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def overdue(
        self,
        *,
        paid_cutoff: datetime,
        credit_cutoff: datetime,
        credit_budget: timedelta,
        limit: int,
        skip: Collection[uuid.UUID] = (),
    ) -> list[uuid.UUID]:
        """Orders whose wait looks overdue, longest-unchanged first (unlocked: each is
        judged again under its lock). ``skip``: orders this run already handled.

        paid: OrderPaid sent in this wait and neither it nor a re-send younger than
        ``paid_cutoff``; credit_check: the check's deadline (or the last re-queue plus
        the budget) older than ``credit_cutoff``.
        """
        query = text(
            "SELECT order_id FROM (" + _WAITS + " AND o.id <> ALL(:skip)"
            # A paid wait younger than the cutoff cannot be overdue (OrderPaid and its
            # re-sends come after the wait began): its outbox rows are not read at all,
            # which on a promotion day's backlog is most of the paid orders.
            "   AND (o.state <> 'paid' OR last.at <= :paid_cutoff)) waits"
            " WHERE (state = 'paid'"
            "        AND GREATEST(asked_at, last_resent_at) <= :paid_cutoff)"
            "    OR (state = 'credit_check'"
            "        AND GREATEST(asked_at, last_resent_at + make_interval(secs => :budget))"
            "            <= :credit_cutoff)"
            " ORDER BY updated_at, order_id LIMIT :limit"
        ).bindparams(bindparam("skip", type_=ARRAY(Uuid)))
        rows = await self._session.execute(
            query,
            {
                "skip": list(skip),
                "paid_cutoff": paid_cutoff,
                "credit_cutoff": credit_cutoff,
                "budget": credit_budget.total_seconds(),
                "limit": limit,
            },
        )
        return [r.order_id for r in rows]

    async def wait_of(self, order_id: uuid.UUID, *, credit_budget: timedelta) -> Wait | None:
        """The current wait of one order (call with the order locked); None when the
        order is not in a watched state."""
        row = (
            await self._session.execute(
                text(_WAITS + " AND o.id = :order_id"),
                {"order_id": order_id, "budget": credit_budget.total_seconds()},
            )
        ).first()
        return None if row is None else _wait(row)

    async def count_resend(self, wait: Wait, at: datetime) -> None:
        """One more re-send in ``wait`` (a new wait starts the count at one)."""
        await self._upsert(wait, resends=wait.resends + 1, last_resent_at=at, stalled_at=None)

    async def mark_stalled(self, wait: Wait, at: datetime) -> None:
        await self._upsert(
            wait, resends=wait.resends, last_resent_at=wait.last_resent_at, stalled_at=at
        )

    async def _upsert(
        self,
        wait: Wait,
        *,
        resends: int,
        last_resent_at: datetime | None,
        stalled_at: datetime | None,
    ) -> None:
        values = {
            "state": wait.state,
            "waiting_since": wait.entered_at,
            "resends": resends,
            "last_resent_at": last_resent_at,
            "stalled_at": stalled_at,
        }
        await self._session.execute(
            pg_insert(order_watchdog)
            .values(order_id=wait.order_id, **values)
            .on_conflict_do_update(index_elements=["order_id"], set_=values)
        )
