"""What a channel's later word on an order means for the order, by the order's state.

order-svc owns the order's life cycle: the gateway only reports what the channel now
says (``ChannelOrderUpdated``), and these rules decide what the order does about it.
Pure: no I/O, tested with plain values.

- paid later: an order waiting for payment takes the normal paid path (credit check
  where required, workflow rules, reservation).
- cancelled before shipment: the order is cancelled and its stock released.
- cancelled after shipment: the parcel is gone; a person handles the return
  (``cancelled_after_shipment``), nothing is released twice.
- other lines or another address before any stock is held: the order takes them.
  Other lines once stock is held or picking began: a person decides
  (``order_changed``), never a silent mismatch between the order and its reservation.
  Another address before picking: the order takes it (the stock does not depend on it);
  once picking began: a person decides.
- a fact older than the one applied (the channel's own timestamp) changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from order_svc.domain.order import OrderState

S = OrderState

#: Nothing is held for the order yet and nothing was asked for: it can still change.
_OPEN = frozenset({S.RECEIVED, S.PENDING_PAYMENT})
#: The parcel left: a cancellation is a return, a change is too late.
_SHIPPED = frozenset({S.SHIPPED, S.DELIVERED})
#: Nothing more happens to the order.
_FINAL = frozenset({S.CANCELLED, S.REFUNDED})


class Reaction(StrEnum):
    TAKE_LINES = "take_lines"
    TAKE_ADDRESS = "take_address"
    PAY = "pay"
    CANCEL = "cancel"
    RETURN_FOR_REVIEW = "cancelled_after_shipment"
    CHANGE_FOR_REVIEW = "order_changed"


@dataclass(frozen=True)
class ChannelWord:
    """What the channel now says: whether it is paid or cancelled, and what changed."""

    paid: bool
    cancelled: bool
    lines_changed: bool
    address_changed: bool
    channel_updated_at: datetime | None


def is_stale(word: ChannelWord, applied_at: datetime | None) -> bool:
    """Older than the channel's version the order already follows (both timed)."""
    return (
        applied_at is not None
        and word.channel_updated_at is not None
        and word.channel_updated_at < applied_at
    )


def react(state: OrderState, word: ChannelWord) -> list[Reaction]:
    """What the order does about ``word`` in ``state``, in the order to do it."""
    if state in _FINAL:
        return []
    if word.cancelled:
        return [Reaction.RETURN_FOR_REVIEW] if state in _SHIPPED else [Reaction.CANCEL]
    reactions: list[Reaction] = []
    if word.lines_changed:
        reactions.append(Reaction.TAKE_LINES if state in _OPEN else Reaction.CHANGE_FOR_REVIEW)
    if word.address_changed:
        if state in _SHIPPED or state is S.PICKING:
            if Reaction.CHANGE_FOR_REVIEW not in reactions:
                reactions.append(Reaction.CHANGE_FOR_REVIEW)
        else:
            reactions.append(Reaction.TAKE_ADDRESS)
    if word.paid and state in _OPEN and Reaction.CHANGE_FOR_REVIEW not in reactions:
        reactions.append(Reaction.PAY)
    return reactions


def change_detail(changed: Sequence[str], state: OrderState) -> str:
    """Why a change went to a person, for the exception queue."""
    what = " and ".join(c for c in changed if c in ("lines", "address")) or "the order"
    return f"the channel changed {what} while the order was {state.value}"
