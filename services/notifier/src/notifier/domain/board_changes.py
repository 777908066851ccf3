"""What one transaction's events tell the board, gathered before anything is written.

The consumer applies up to a chunk of messages in one transaction; writing the board
once per event would cost a statement (or two) per event. Instead the projection records
each event here, in arrival order, and the adapter writes the whole transaction's worth
at once: one locked read and one write for all the orders touched, one upsert per stock
table. :func:`fold_order` replays an order's events on its stored row exactly as the
per-event upserts did (same guards, same order), so the result does not depend on how
the events were grouped into transactions.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from notifier.domain.board import EXCEPTION_STATE, minute_of

#: The columns of a board order row the projection writes (``order_id`` is the key).
ORDER_COLUMNS: tuple[str, ...] = (
    "channel",
    "channel_order_id",
    "state",
    "state_changed_at",
    "state_reason",
    "customer_id",
    "currency",
    "total",
    "priority",
    "created_at",
    "credit_degraded",
    "credit_reason",
    "credit_degraded_at",
    "sla_stage",
    "sla_deadline",
    "sla_status",
    "sla_raised_at",
    "routing",
)

OrderRow = dict[str, Any]


@dataclass(frozen=True)
class Created:
    """An OrderCreated: fills the order's details the first time only."""

    channel: str
    channel_order_id: str
    currency: str
    total: Decimal
    priority: str
    created_at: datetime


@dataclass
class StateChange:
    """An OrderStatusChanged; ``latest`` is set by the fold (was it the newest then?)."""

    channel: str
    from_state: str | None
    to_state: str
    reason: str | None
    changed_at: datetime
    cause: str | None
    latest: bool = False


@dataclass(frozen=True)
class Facts:
    """Plain facts about the order (routing, customer, credit): the last one told wins."""

    channel: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Sla:
    """An SLA warning: kept unless a later-raised one is already known."""

    channel: str
    values: dict[str, Any]
    raised_at: datetime


OrderOp = Created | StateChange | Facts | Sla


@dataclass(frozen=True)
class ExceptionRaised:
    """Open (or re-open) an exception; ``when`` gates one told by a state change."""

    order_id: uuid.UUID
    cause: str
    exception_id: uuid.UUID | None
    channel: str
    detail: str | None
    raised_at: datetime
    parks_order: bool
    when: StateChange | None = None


@dataclass(frozen=True)
class ExceptionResolved:
    order_id: uuid.UUID
    cause: str
    exception_id: uuid.UUID
    channel: str
    resolution: str
    resolved_at: datetime


@dataclass(frozen=True)
class ParkedReleased:
    """The order left the exception state: what parked it is resolved (if it was latest)."""

    order_id: uuid.UUID
    to_state: str
    changed_at: datetime
    when: StateChange


ExceptionOp = ExceptionRaised | ExceptionResolved | ParkedReleased


@dataclass
class OrderFold:
    """An order's row after its events, and what else they imply."""

    row: OrderRow
    changed: bool = False
    #: Minutes in which this order was counted as created (at most one).
    created_minutes: list[datetime] = field(default_factory=list)


def _keep_latest(
    kept: dict[Any, tuple[datetime, dict[str, Any]]],
    key: Any,
    at: datetime,
    values: dict[str, Any],
) -> None:
    """Keep ``values`` for ``key`` unless an entry of a strictly later time is kept.

    The same rule as the tables' guard (``stored time <= new time``) applied in order,
    so the last of the latest wins and one upsert per key says it all.
    """
    known = kept.get(key)
    if known is None or known[0] <= at:
        kept[key] = (at, values)


@dataclass
class BoardChanges:
    """Everything the board learns in one transaction, in the order it was told."""

    orders: dict[uuid.UUID, list[OrderOp]] = field(default_factory=dict)
    exceptions: list[ExceptionOp] = field(default_factory=list)
    low_stock: dict[str, tuple[datetime, dict[str, Any]]] = field(default_factory=dict)
    stock_levels: dict[tuple[str, str], tuple[datetime, dict[str, Any]]] = field(
        default_factory=dict
    )
    channel_pauses: dict[tuple[str, str], tuple[datetime, dict[str, Any]]] = field(
        default_factory=dict
    )

    def __bool__(self) -> bool:
        return bool(self.orders or self.low_stock or self.stock_levels or self.channel_pauses)

    def _op(self, order_id: uuid.UUID, op: OrderOp) -> None:
        self.orders.setdefault(order_id, []).append(op)

    def order_created(
        self,
        *,
        order_id: uuid.UUID,
        channel: str,
        channel_order_id: str,
        currency: str,
        total: Decimal,
        priority: str,
        created_at: datetime,
    ) -> None:
        self._op(
            order_id, Created(channel, channel_order_id, currency, total, priority, created_at)
        )

    def state_changed(
        self,
        *,
        order_id: uuid.UUID,
        channel: str,
        from_state: str | None,
        to_state: str,
        reason: str | None,
        changed_at: datetime,
        cause: str | None,
    ) -> None:
        """Move the order unless a later transition is known; entering the exception
        state with a ``cause`` opens the exception that parks it, leaving it resolves."""
        change = StateChange(channel, from_state, to_state, reason, changed_at, cause)
        self._op(order_id, change)
        if to_state == EXCEPTION_STATE and cause is not None:
            self.exceptions.append(
                ExceptionRaised(order_id, cause, None, channel, reason, changed_at, True, change)
            )
        elif from_state == EXCEPTION_STATE:
            self.exceptions.append(ParkedReleased(order_id, to_state, changed_at, change))

    def exception_raised(
        self,
        *,
        order_id: uuid.UUID,
        cause: str,
        exception_id: uuid.UUID | None,
        channel: str,
        detail: str | None,
        raised_at: datetime,
    ) -> None:
        self._op(order_id, Facts(channel, {}))
        self.exceptions.append(
            ExceptionRaised(order_id, cause, exception_id, channel, detail, raised_at, False)
        )

    def exception_resolved(
        self,
        *,
        order_id: uuid.UUID,
        cause: str,
        exception_id: uuid.UUID,
        channel: str,
        resolution: str,
        resolved_at: datetime,
    ) -> None:
        self._op(order_id, Facts(channel, {}))
        self.exceptions.append(
            ExceptionResolved(order_id, cause, exception_id, channel, resolution, resolved_at)
        )

    def order_routed(self, *, order_id: uuid.UUID, channel: str, routing: dict[str, Any]) -> None:
        # Kept as JSON text: the adapter reads and writes the column as text.
        self._op(order_id, Facts(channel, {"routing": json.dumps(routing)}))

    def customer_resolved(
        self, *, order_id: uuid.UUID, channel: str, customer_id: uuid.UUID
    ) -> None:
        self._op(order_id, Facts(channel, {"customer_id": customer_id}))

    def credit_degraded(
        self, *, order_id: uuid.UUID, channel: str, reason: str, degraded_at: datetime
    ) -> None:
        values = {
            "credit_degraded": True,
            "credit_reason": reason,
            "credit_degraded_at": degraded_at,
        }
        self._op(order_id, Facts(channel, values))

    def sla(
        self,
        *,
        order_id: uuid.UUID,
        channel: str,
        stage: str,
        deadline: datetime,
        status: str,
        raised_at: datetime,
    ) -> None:
        values = {
            "sla_stage": stage,
            "sla_deadline": deadline,
            "sla_status": status,
            "sla_raised_at": raised_at,
        }
        self._op(order_id, Sla(channel, values, raised_at))

    def stock_low(
        self,
        *,
        sku: str,
        warehouse: str | None,
        available: int,
        safety_stock: int,
        raised_at: datetime,
    ) -> None:
        values = {"warehouse": warehouse, "available": available, "safety_stock": safety_stock}
        _keep_latest(self.low_stock, sku, raised_at, values)

    def stock_level(
        self, *, sku: str, warehouse: str, available: int, changed_at: datetime
    ) -> None:
        _keep_latest(self.stock_levels, (sku, warehouse), changed_at, {"available": available})

    def channel_sales(
        self, *, sku: str, channel: str, paused: bool, reason: str, changed_at: datetime
    ) -> None:
        values = {"paused": paused, "reason": reason}
        _keep_latest(self.channel_pauses, (sku, channel), changed_at, values)


def _not_after(stored: datetime | None, at: datetime) -> bool:
    """The tables' time guard: nothing stored yet, or stored no later than ``at``."""
    return stored is None or stored <= at


def _apply(fold: OrderFold, op: OrderOp) -> None:
    """One event on the row, as its single upsert did (the channel: first one known)."""
    row = fold.row
    if isinstance(op, Created):
        if row["created_at"] is not None:
            return  # announced before: nothing changes, not counted again
        row.update(
            channel=op.channel,
            channel_order_id=op.channel_order_id,
            # A transition seen first already knows a later state.
            state=row["state"] if row["state"] is not None else "received",
            currency=op.currency,
            total=op.total,
            priority=op.priority,
            created_at=op.created_at,
        )
        fold.created_minutes.append(minute_of(op.created_at))
    elif isinstance(op, StateChange):
        op.latest = _not_after(row["state_changed_at"], op.changed_at)
        if not op.latest:
            return
        row.update(state=op.to_state, state_changed_at=op.changed_at, state_reason=op.reason)
    elif isinstance(op, Sla):
        if not _not_after(row["sla_raised_at"], op.raised_at):
            return
        row.update(op.values)
    else:
        row.update(op.values)
    if row["channel"] is None:
        row["channel"] = op.channel
    fold.changed = True


def fold_order(stored: OrderRow, ops: list[OrderOp]) -> OrderFold:
    """The order's row after ``ops`` (in arrival order) applied to ``stored``.

    ``stored`` is the row as locked for this transaction (all columns ``None`` for an
    order first seen now). Marks each state change with whether it was the latest then.
    """
    fold = OrderFold(row={column: stored.get(column) for column in ORDER_COLUMNS})
    for op in ops:
        _apply(fold, op)
    return fold


def is_due(op: ExceptionOp) -> bool:
    """Whether an exception change applies: one told by a state change only when that
    change was the order's latest (see :func:`fold_order`)."""
    when = op.when if isinstance(op, ExceptionRaised | ParkedReleased) else None
    return when is None or when.latest
