"""Do order-svc's orders and inventory-svc's reservations agree? The pure comparison.

order-svc owns the order life cycle and inventory-svc the stock held for it; each changes
only through the other's events, so a lost, duplicated or misapplied event (or a hand
fix in one database) shows up as a disagreement between the two. This module compares
snapshots of both (no I/O, so it is tested with plain objects); the service layer reads
them (``order_svc.service_layer.consistency``).

The rules, by the order's state:

- ``reserved``, ``confirmed``, ``routed``, ``picking``: inventory must hold the order's
  lines (``no_reservation`` if it holds nothing, ``reservation_mismatch`` if what it holds
  is not the lines: SKU and quantity per line, and the warehouse when the line names one);
- ``cancelled``, ``delivered``, ``refunded``, ``shipped``: inventory must hold nothing
  (``stock_held_for_closed_order``);
- ``received``, ``pending_payment``: not paid, so nothing may be held
  (``stock_held_for_unpaid_order``);
- ``paid``, ``credit_check``: the reservation is being asked for: not checked;
- ``exception``: stock may or may not be held (depends on where the order stopped): only
  what is held must match the lines;
- a reservation for an order order-svc does not know: ``unknown_order``.

Changes in flight are not disagreements: an order whose last change, or a reservation
whose last change, is younger than the grace period is left for the next check.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Kind(StrEnum):
    STOCK_HELD_FOR_CLOSED_ORDER = "stock_held_for_closed_order"
    STOCK_HELD_FOR_UNPAID_ORDER = "stock_held_for_unpaid_order"
    NO_RESERVATION = "no_reservation"
    RESERVATION_MISMATCH = "reservation_mismatch"
    UNKNOWN_ORDER = "unknown_order"


#: Inventory must hold exactly the order's lines.
MUST_HOLD = frozenset({"reserved", "confirmed", "routed", "picking"})
#: The parcel left or the order ended: inventory must hold nothing.
CLOSED = frozenset({"cancelled", "delivered", "refunded", "shipped"})
#: Not paid yet: inventory must hold nothing.
UNPAID = frozenset({"received", "pending_payment"})
#: The reservation is being asked for: either answer is fine for now.
IN_FLIGHT = frozenset({"paid", "credit_check"})
#: Held where the order stopped, or not: what is held must match the lines.
MAY_HOLD = frozenset({"exception"})

#: Order states in which an order without a reservation is a disagreement: the orders
#: the check reads besides those inventory names.
STATES_TO_READ = MUST_HOLD


@dataclass(frozen=True)
class Line:
    """An order line, or a reserved line (``warehouse`` None: the order line names none)."""

    line_no: int
    sku: str
    qty: int
    warehouse: str | None = None


@dataclass(frozen=True)
class OrderSnapshot:
    order_id: uuid.UUID
    state: str
    lines: tuple[Line, ...]
    #: The order's last change (its state among them).
    changed_at: datetime


@dataclass(frozen=True)
class HeldStock:
    """What inventory holds open for one order."""

    order_id: uuid.UUID
    lines: tuple[Line, ...]
    #: The last change of one of the open lines.
    changed_at: datetime


@dataclass(frozen=True)
class Disagreement:
    order_id: uuid.UUID
    #: The order's state in order-svc; None for an order order-svc does not know.
    state: str | None
    kind: Kind
    detail: str


def compare(
    orders: Iterable[OrderSnapshot],
    held: Iterable[HeldStock],
    *,
    now: datetime,
    grace: timedelta,
) -> list[Disagreement]:
    """Every disagreement between ``orders`` and ``held``, by order id.

    ``orders`` must include every order in a :data:`STATES_TO_READ` state and every
    order ``held`` names that order-svc knows; an order missing from it is unknown.
    """
    settled_before = now - grace
    by_order: dict[uuid.UUID, OrderSnapshot] = {o.order_id: o for o in orders}
    holding: dict[uuid.UUID, HeldStock] = {h.order_id: h for h in held}
    found: list[Disagreement] = []
    for order_id in sorted(by_order.keys() | holding.keys()):
        order = by_order.get(order_id)
        stock = holding.get(order_id)
        if order is not None and order.changed_at > settled_before:
            continue
        if stock is not None and stock.changed_at > settled_before:
            continue
        found.extend(_judge(order_id, order, stock))
    return found


def _judge(
    order_id: uuid.UUID, order: OrderSnapshot | None, stock: HeldStock | None
) -> list[Disagreement]:
    if order is None:
        assert stock is not None
        return [
            Disagreement(
                order_id,
                None,
                Kind.UNKNOWN_ORDER,
                f"inventory holds {_describe(stock.lines)} for an order order-svc does not know",
            )
        ]
    state = order.state
    if stock is None:
        if state in MUST_HOLD:
            return [
                Disagreement(
                    order_id,
                    state,
                    Kind.NO_RESERVATION,
                    f"the order is {state} but inventory holds nothing for it "
                    f"(lines: {_describe(order.lines)})",
                )
            ]
        return []
    if state in CLOSED:
        return [
            Disagreement(
                order_id,
                state,
                Kind.STOCK_HELD_FOR_CLOSED_ORDER,
                f"the order is {state} but inventory still holds {_describe(stock.lines)}",
            )
        ]
    if state in UNPAID:
        return [
            Disagreement(
                order_id,
                state,
                Kind.STOCK_HELD_FOR_UNPAID_ORDER,
                f"the order is {state} (not paid) but inventory holds {_describe(stock.lines)}",
            )
        ]
    if state in MUST_HOLD or state in MAY_HOLD:
        problems = line_differences(order.lines, stock.lines)
        if problems:
            return [Disagreement(order_id, state, Kind.RESERVATION_MISMATCH, "; ".join(problems))]
    return []  # paid, credit_check (in flight) and any state this check does not know


def line_differences(ordered: Iterable[Line], reserved: Iterable[Line]) -> list[str]:
    """How the reserved lines differ from the order's, per line number (none: agree).

    A line matches when SKU and quantity agree and, if the order line names a warehouse,
    the reservation is in that warehouse (otherwise inventory chose, and any will do).
    """
    wanted: Mapping[int, Line] = {ln.line_no: ln for ln in ordered}
    held: Mapping[int, Line] = {ln.line_no: ln for ln in reserved}
    differences = []
    for line_no in sorted(wanted.keys() | held.keys()):
        want, have = wanted.get(line_no), held.get(line_no)
        if have is None:
            assert want is not None
            differences.append(f"line {line_no}: ordered {_line(want)}, nothing reserved")
        elif want is None:
            differences.append(f"line {line_no}: reserved {_line(have)}, not on the order")
        elif (
            want.sku != have.sku
            or want.qty != have.qty
            or (want.warehouse is not None and want.warehouse != have.warehouse)
        ):
            differences.append(f"line {line_no}: ordered {_line(want)}, reserved {_line(have)}")
    return differences


def _line(line: Line) -> str:
    where = f" at {line.warehouse}" if line.warehouse else ""
    return f"{line.qty} x {line.sku}{where}"


def _describe(lines: Iterable[Line]) -> str:
    return ", ".join(f"line {ln.line_no}: {_line(ln)}" for ln in lines) or "no lines"
