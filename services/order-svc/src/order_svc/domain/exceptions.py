"""The exception queue's rules: classifying causes and what a resolution may do.

Code that parks an order calls ``order.raise_exception("cause (detail)", at)``; the
cause is the leading word when it is one of :data:`CAUSES`, anything else is a
``manual_review`` with the whole reason as detail. So new callers need no registry.

Two kinds of cause: *holding* ones put the order in the ``exception`` state and it
waits for an operator; *advisory* ones (a degraded credit check, a breached SLA) are
recorded for review while the order goes on (or stays wherever it is).
"""

from __future__ import annotations

import re
from enum import StrEnum

from order_svc.domain.order import TRANSITIONS, OrderState

#: Same values as ``oms_contracts.events.ExceptionCause`` (a test keeps them equal).
CAUSES: tuple[str, ...] = (
    "credit_degraded",
    "credit_refused",
    "stock_rejected",
    "routing_impossible",
    "sla_breached",
    "payment_mismatch",
    "invalid_address",
    "unmapped_sku",
    "manual_review",
    "customer_limit",
    "cancelled_after_shipment",
    "reservation_lost",
    "stalled",
    "order_changed",
)

#: Causes recorded for review without holding the order. A cancellation after shipment
#: leaves the order shipped (the parcel is on its way): a person starts the return.
ADVISORY_CAUSES = frozenset({"credit_degraded", "sla_breached", "cancelled_after_shipment"})

FALLBACK_CAUSE = "manual_review"

#: The cause of orders held for a person's look (workflow hold rules use it).
REVIEW_CAUSE = "manual_review"

_REASON = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def classify(reason: str | None) -> tuple[str, str | None]:
    """``"stock_rejected (SKU-1: insufficient)"`` -> ``("stock_rejected", "SKU-1: ...")``."""
    text = (reason or "").strip()
    match = _REASON.match(text)
    if match is not None and match.group(1) in CAUSES:
        detail = (match.group(2) or "").strip()
        return match.group(1), detail or None
    return FALLBACK_CAUSE, text or None


class Action(StrEnum):
    RETRY = "retry"
    RELEASE = "release"
    CANCEL = "cancel"


class Effect(StrEnum):
    """What resolving does to the order besides closing the exception."""

    NONE = "none"  # close the exception only
    RESUME = "resume"  # exception -> paid, and the reservation is asked for again
    CANCEL = "cancel"  # cancel the order (its stock is released)


class ResolutionRefused(Exception):
    """The action does not fit the exception or the order's state (answered 409)."""


def plan_resolution(action: Action, cause: str, order_state: OrderState) -> Effect:
    """What resolving an open exception with ``action`` does, or why it may not.

    - retry: the order is held in ``exception`` by a holding cause; it goes back to
      ``paid`` and the step that failed (reservation, routing) runs again. For a
      refused credit check this is the operator's override.
    - release: the order continues as it is; refused while a holding cause still holds
      it (nothing would move it on: retry or cancel it instead), except a manual review
      hold: releasing it is the reviewer's approval, and the order resumes like a retry.
    - cancel: the order is cancelled (already cancelled: the exception just closes).
    """
    held = order_state is OrderState.EXCEPTION and cause not in ADVISORY_CAUSES
    if action is Action.RETRY:
        if not held:
            raise ResolutionRefused(
                f"nothing to retry: the order is {order_state} and the cause is {cause}"
            )
        return Effect.RESUME
    if action is Action.RELEASE:
        if held and cause == REVIEW_CAUSE:
            return Effect.RESUME
        if held:
            raise ResolutionRefused("the order is held by this exception: retry or cancel it")
        return Effect.NONE
    if order_state is OrderState.CANCELLED:
        return Effect.NONE
    if OrderState.CANCELLED not in TRANSITIONS[order_state]:
        raise ResolutionRefused(f"an order in state {order_state} can no longer be cancelled")
    return Effect.CANCEL
