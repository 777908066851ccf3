"""The consistency check between order-svc's orders and inventory-svc's reservations:
read both sides, compare (``order_svc.domain.consistency``), report.

Read in this order on purpose: inventory first, then the orders. A change that lands
in between is younger than the grace period on at least one side, so it is skipped
rather than reported. Both reads are set-based (inventory in pages of thousands, the
orders in one statement over the states that must hold stock plus the ids inventory
named), so 50,000 orders cost a few queries, never one per order.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from oms_messaging import UnitOfWork
from order_svc.adapters.inventory_client import InventoryClient, InventoryUnavailable
from order_svc.domain.consistency import (
    STATES_TO_READ,
    Disagreement,
    HeldStock,
    Kind,
    Line,
    OrderSnapshot,
    compare,
)
from order_svc.metrics import CONSISTENCY_DISAGREEMENTS
from order_svc.settings import OrderSettings

log = logging.getLogger(__name__)

#: The orders the check needs: those that must hold stock, and those inventory named.
_ORDERS_SQL = text(
    "SELECT o.id, o.state, COALESCE(o.updated_at, o.created_at) AS changed_at,"
    " l.line_no, l.sku, l.qty, l.warehouse"
    " FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id"
    " WHERE o.state = ANY(CAST(:states AS text[])) OR o.id = ANY(CAST(:ids AS uuid[]))"
    " ORDER BY o.id, l.line_no"
)


@dataclass(frozen=True)
class ConsistencyReport:
    checked_at: datetime
    orders_checked: int
    reservations_checked: int
    disagreements: list[Disagreement] = field(default_factory=list)

    def counts(self) -> dict[Kind, int]:
        """Disagreements per kind, every kind present (0 when none)."""
        counts = dict.fromkeys(Kind, 0)
        for d in self.disagreements:
            counts[d.kind] += 1
        return counts


async def read_orders(session: AsyncSession, ids: Iterable[uuid.UUID]) -> list[OrderSnapshot]:
    """The orders in a state that must hold stock, and the orders of ``ids``, with lines."""
    rows = await session.execute(
        _ORDERS_SQL, {"states": sorted(STATES_TO_READ), "ids": [str(i) for i in ids]}
    )
    snapshots: list[OrderSnapshot] = []
    current: uuid.UUID | None = None
    lines: list[Line] = []
    state, changed_at = "", datetime.min.replace(tzinfo=UTC)
    for row in rows:
        if row.id != current:
            if current is not None:
                snapshots.append(OrderSnapshot(current, state, tuple(lines), changed_at))
            current, state, changed_at, lines = row.id, row.state, row.changed_at, []
        if row.line_no is not None:
            lines.append(Line(row.line_no, row.sku, row.qty, row.warehouse))
    if current is not None:
        snapshots.append(OrderSnapshot(current, state, tuple(lines), changed_at))
    return snapshots


class ConsistencyCheck:
    """Runs the comparison on demand (``GET /consistency``) and for the periodic job."""

    def __init__(self, inventory: InventoryClient, *, grace_s: float) -> None:
        self.inventory = inventory
        self.grace_s = grace_s

    @classmethod
    def from_settings(cls, settings: OrderSettings) -> ConsistencyCheck:
        return cls(
            InventoryClient(
                settings.inventory_svc_url,
                page_size=settings.consistency_page_size,
                timeout_s=settings.consistency_timeout_s,
            ),
            grace_s=settings.consistency_grace_s,
        )

    async def run(
        self, uow: Callable[[], UnitOfWork], *, grace_s: float | None = None
    ) -> ConsistencyReport:
        """Compare now; raises ``InventoryUnavailable`` when inventory cannot be read."""
        held: list[HeldStock] = await self.inventory.open_reservations()
        async with uow() as unit:
            orders = await read_orders(unit.session, (h.order_id for h in held))
        now = datetime.now(UTC)
        grace = timedelta(seconds=self.grace_s if grace_s is None else grace_s)
        return ConsistencyReport(
            checked_at=now,
            orders_checked=len(orders),
            reservations_checked=len(held),
            disagreements=compare(orders, held, now=now, grace=grace),
        )

    async def run_and_record(self, uow: Callable[[], UnitOfWork], service: str) -> None:
        """The periodic job: run with the configured grace and set the gauge per kind.

        When inventory cannot be read the gauge keeps its last values (a failed check
        proves nothing either way) and the failure is logged.
        """
        try:
            report = await self.run(uow)
        except InventoryUnavailable as exc:
            log.warning("consistency check skipped: %s", exc)
            return
        for kind, n in report.counts().items():
            CONSISTENCY_DISAGREEMENTS.labels(service, kind.value).set(n)
        if report.disagreements:
            log.warning(
                "orders and stock reservations disagree",
                extra={
                    "disagreements": len(report.disagreements),
                    "orders": [str(d.order_id) for d in report.disagreements[:20]],
                },
            )
