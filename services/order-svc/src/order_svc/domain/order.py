"""The order aggregate and its state machine.

The aggregate guards its own transitions: a transition not in ``TRANSITIONS`` raises
:class:`IllegalTransition` before anything changes, so an order is never half-moved.
Every accepted transition is returned as a :class:`Transition` record (time, actor,
reason), which the caller stores as the order's history and publishes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class OrderState(StrEnum):
    RECEIVED = "received"
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    CREDIT_CHECK = "credit_check"
    RESERVED = "reserved"
    CONFIRMED = "confirmed"
    ROUTED = "routed"
    PICKING = "picking"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    EXCEPTION = "exception"


S = OrderState

#: Allowed moves. Cancelling is possible until the parcel leaves; refunds follow
#: payment; an exception can be raised wherever automation can get stuck and resolved
#: back into the flow by an operator.
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.RECEIVED: frozenset({S.PENDING_PAYMENT, S.PAID, S.CANCELLED, S.EXCEPTION}),
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED, S.EXCEPTION}),
    S.PAID: frozenset({S.CREDIT_CHECK, S.RESERVED, S.CANCELLED, S.REFUNDED, S.EXCEPTION}),
    S.CREDIT_CHECK: frozenset({S.PAID, S.RESERVED, S.CANCELLED, S.EXCEPTION}),
    S.RESERVED: frozenset({S.CONFIRMED, S.CANCELLED, S.EXCEPTION}),
    S.CONFIRMED: frozenset({S.ROUTED, S.PICKING, S.CANCELLED, S.EXCEPTION}),
    S.ROUTED: frozenset({S.PICKING, S.CANCELLED, S.EXCEPTION}),
    S.PICKING: frozenset({S.SHIPPED, S.CANCELLED, S.EXCEPTION}),
    S.SHIPPED: frozenset({S.DELIVERED, S.EXCEPTION}),
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
    S.EXCEPTION: frozenset({S.PAID, S.RESERVED, S.CONFIRMED, S.CANCELLED}),
}


#: States in which inventory holds the order's stock for it (the reservation answer came
#: and the parcel has not left): losing the reservation there needs a person.
HOLDS_STOCK: frozenset[OrderState] = frozenset({S.RESERVED, S.CONFIRMED, S.ROUTED, S.PICKING})


class IllegalTransition(Exception):
    def __init__(self, from_state: OrderState, to_state: OrderState) -> None:
        super().__init__(f"an order cannot go from {from_state} to {to_state}")
        self.from_state = from_state
        self.to_state = to_state


@dataclass(frozen=True)
class Transition:
    from_state: OrderState | None
    to_state: OrderState
    at: datetime
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class Line:
    line_no: int
    sku: str
    qty: int
    unit_price: Decimal
    warehouse: str | None = None


SYSTEM = "system"


@dataclass
class Order:
    id: uuid.UUID
    channel: str
    channel_order_id: str
    state: OrderState
    lines: list[Line]
    currency: str
    priority: str = "normal"
    customer_id: uuid.UUID | None = None
    #: The buyer's account on the channel (from the order as received), if the channel
    #: gave one: what a per-customer cap counts by (as an opaque key, see domain.buyer).
    platform_user_id: str | None = None
    exception_reason: str | None = None
    #: Credit went on as "OK" without the bureau's answer (timeout, open breaker, error).
    credit_degraded: bool = False
    paid_at: datetime | None = None
    pending: list[Transition] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.unit_price * line.qty for line in self.lines), Decimal("0"))

    @classmethod
    def receive(
        cls,
        *,
        id: uuid.UUID,
        channel: str,
        channel_order_id: str,
        lines: list[Line],
        currency: str,
        priority: str,
        at: datetime,
        platform_user_id: str | None = None,
    ) -> Order:
        order = cls(id, channel, channel_order_id, S.RECEIVED, lines, currency, priority)
        order.platform_user_id = platform_user_id
        order.pending.append(Transition(None, S.RECEIVED, at, SYSTEM, "received from channel"))
        return order

    def can_move_to(self, target: OrderState) -> bool:
        return target in TRANSITIONS[self.state]

    def move_to(
        self, target: OrderState, *, at: datetime, actor: str = SYSTEM, reason: str | None = None
    ) -> Transition:
        if not self.can_move_to(target):
            raise IllegalTransition(self.state, target)
        transition = Transition(self.state, target, at, actor, reason)
        self.state = target
        self.pending.append(transition)
        return transition

    # -- the business steps ---------------------------------------------------------

    def await_payment(self, at: datetime) -> None:
        self.move_to(S.PENDING_PAYMENT, at=at, reason="not paid yet")

    def mark_paid(self, at: datetime) -> None:
        self.move_to(S.PAID, at=at, reason="payment received")

    def reserve(
        self,
        warehouses: dict[int, str],
        at: datetime,
        *,
        actor: str = SYSTEM,
        reason: str = "stock reserved",
    ) -> None:
        """Stock is held for every line; record which warehouse holds each."""
        self.move_to(S.RESERVED, at=at, actor=actor, reason=reason)
        self.lines = [
            Line(ln.line_no, ln.sku, ln.qty, ln.unit_price, warehouses.get(ln.line_no))
            for ln in self.lines
        ]

    def confirm(self, at: datetime) -> None:
        self.move_to(S.CONFIRMED, at=at, reason="paid and reserved")

    def take_channel_lines(self, lines: list[Line]) -> None:
        """The channel changed the lines before any stock was held or asked for: the
        order takes them (later, a change goes to a person instead)."""
        if self.state not in (S.RECEIVED, S.PENDING_PAYMENT):
            raise IllegalTransition(self.state, self.state)
        self.lines = list(lines)

    # -- routing ------------------------------------------------------------------------

    def assign_warehouses(self, warehouses: dict[int, str]) -> None:
        """Pin lines to the warehouses routing chose (lines not named are unpinned), so
        the reservation asks for exactly those; only while the stock is not yet held."""
        if self.state not in (S.PAID, S.CREDIT_CHECK):
            raise IllegalTransition(self.state, self.state)
        self.lines = [
            Line(ln.line_no, ln.sku, ln.qty, ln.unit_price, warehouses.get(ln.line_no))
            for ln in self.lines
        ]

    def route(self, detail: str, at: datetime) -> None:
        """The stock is held where routing said: the order is ready for its warehouse(s)."""
        self.move_to(S.ROUTED, at=at, reason=f"routed: {detail}")

    def routing_impossible(self, detail: str, at: datetime) -> None:
        self.raise_exception(f"routing_impossible ({detail})", at)

    def raise_exception(self, reason: str, at: datetime, actor: str = SYSTEM) -> None:
        self.move_to(S.EXCEPTION, at=at, actor=actor, reason=reason)
        self.exception_reason = reason

    # -- the credit check -------------------------------------------------------------

    def start_credit_check(self, at: datetime) -> None:
        """Paid: ask the bureau before any stock is held."""
        self.move_to(S.CREDIT_CHECK, at=at, reason="credit check requested")

    def credit_approved(self, at: datetime) -> None:
        """The bureau said yes: back to ``paid``, where the stock reservation starts."""
        self.move_to(S.PAID, at=at, reason="credit approved")

    def credit_check_degraded(self, cause: str, at: datetime) -> None:
        """No answer in budget (or the breaker is open): go on as "credit OK", flagged."""
        self.move_to(S.PAID, at=at, reason=f"credit check degraded ({cause}): treated as OK")
        self.credit_degraded = True

    def credit_refused(self, detail: str, at: datetime) -> None:
        self.raise_exception(f"credit_refused ({detail})", at)

    # -- operator actions -------------------------------------------------------------

    def cancel(self, reason: str, actor: str, at: datetime) -> bool:
        """Cancel; False (and nothing changes) if it already is. Illegal once shipped."""
        if self.state is S.CANCELLED:
            return False
        self.move_to(S.CANCELLED, at=at, actor=actor, reason=reason)
        return True

    def start_picking(self, actor: str, at: datetime) -> bool:
        if self.state is S.PICKING:
            return False
        self.move_to(S.PICKING, at=at, actor=actor, reason="handed to the warehouse")
        return True

    def ship(self, carrier: str, tracking_number: str, actor: str, at: datetime) -> bool:
        if self.state is S.SHIPPED:
            return False
        self.move_to(S.SHIPPED, at=at, actor=actor, reason=f"{carrier} {tracking_number}")
        return True

    def deliver(self, actor: str, at: datetime) -> bool:
        if self.state is S.DELIVERED:
            return False
        self.move_to(S.DELIVERED, at=at, actor=actor, reason="delivered")
        return True

    def refund(self, reason: str, actor: str, at: datetime) -> bool:
        if self.state is S.REFUNDED:
            return False
        self.move_to(S.REFUNDED, at=at, actor=actor, reason=reason)
        return True
