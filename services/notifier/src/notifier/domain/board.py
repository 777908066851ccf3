"""The operations board's rules, on plain values: what an event means for the board.

Kept free of I/O so the decisions that are easy to get wrong (which of two out-of-order
updates wins, what cause an exception has, how the sparkline is filled) are unit-tested
without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import get_args

from oms_contracts.events import ExceptionCause

#: Every cause an exception can have (the contract's list).
EXCEPTION_CAUSES: tuple[str, ...] = get_args(ExceptionCause)
#: The cause given to an order parked in "exception" whose reason names no known cause.
DEFAULT_CAUSE = "manual_review"
#: The state an order waits in for a person.
EXCEPTION_STATE = "exception"
#: States after which no SLA of an order runs any more, whatever its stage.
SLA_CLOSED_STATES: frozenset[str] = frozenset({"delivered", "cancelled", "refunded"})
#: The states that meet each SLA stage (order-svc's stages: "review" runs from received
#: to confirmed, "ship" from confirmed to shipped). A warning for a stage the order has
#: since met is history, not work; a stage not listed here runs until a closed state.
SLA_STAGE_ENDS: dict[str, frozenset[str]] = {
    "review": frozenset({"confirmed", "routed", "picking", "shipped", "delivered"}),
    "ship": frozenset({"shipped", "delivered"}),
}
#: Display order of the states (order-svc's life cycle); unknown states follow, sorted.
STATE_ORDER: tuple[str, ...] = (
    "received",
    "pending_payment",
    "paid",
    "credit_check",
    "reserved",
    "confirmed",
    "routed",
    "picking",
    "shipped",
    "delivered",
    "cancelled",
    "refunded",
    "exception",
)


def exception_cause(reason: str | None) -> str:
    """The cause of an exception from order-svc's transition reason.

    order-svc writes reasons as ``"<cause> (<detail>)"`` (e.g. ``"stock_rejected (SKU-1:
    insufficient)"``); anything else is a case for a person to look at.
    """
    if not reason:
        return DEFAULT_CAUSE
    head = reason.split("(", 1)[0].strip()
    return head if head in EXCEPTION_CAUSES else DEFAULT_CAUSE


def supersedes(incoming: datetime, stored: datetime | None) -> bool:
    """True if an update stamped ``incoming`` replaces one stamped ``stored``.

    Events of one order can arrive out of order (redelivery, several topics); the one
    that happened last wins, and on a tie the later arrival (a replay is identical).
    """
    return stored is None or incoming >= stored


def sla_running(stage: str, state: str | None) -> bool:
    """True while an SLA warning for ``stage`` still concerns an order in ``state``."""
    if state is None:
        return True
    return state not in SLA_CLOSED_STATES and state not in SLA_STAGE_ENDS.get(stage, ())


def minute_of(at: datetime) -> datetime:
    """The minute ``at`` falls in (the sparkline's bucket)."""
    return at.replace(second=0, microsecond=0)


def sparkline(buckets: Mapping[datetime, int], *, now: datetime, minutes: int) -> list[int]:
    """Orders per minute for the last ``minutes`` minutes (oldest first, now last).

    Minutes with no orders have no bucket row; they are zeros, not gaps.
    """
    last = minute_of(now)
    return [buckets.get(last - timedelta(minutes=i), 0) for i in range(minutes - 1, -1, -1)]


def seconds_left(deadline: datetime, now: datetime) -> int:
    """Whole seconds until ``deadline`` (negative once it has passed)."""
    return int((deadline - now).total_seconds() // 1)


def state_rank(state: str) -> tuple[int, str]:
    """Sort key putting states in life-cycle order, unknown ones last."""
    try:
        return (STATE_ORDER.index(state), state)
    except ValueError:
        return (len(STATE_ORDER), state)


@dataclass
class Counts:
    """Orders per state and channel, with both margins and the total."""

    cells: dict[str, dict[str, int]] = field(default_factory=dict)
    by_state: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    total: int = 0

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str, int]]) -> Counts:
        """From ``(state, channel, n)`` rows (one GROUP BY); states in life-cycle order."""
        counts = cls()
        for state, channel, n in sorted(rows, key=lambda r: (state_rank(r[0]), r[1])):
            counts.cells.setdefault(state, {})[channel] = n
            counts.by_state[state] = counts.by_state.get(state, 0) + n
            counts.by_channel[channel] = counts.by_channel.get(channel, 0) + n
            counts.total += n
        counts.by_channel = dict(sorted(counts.by_channel.items()))
        return counts
