"""What a delivery says that the gateway had not heard yet about a channel order.

Pure rules, no I/O: the gateway remembers the channel's last word on each order (paid,
cancelled, lines, address, the channel's own timestamp) and compares every later
delivery with it. A delivery older than the one remembered is stale and changes
nothing; otherwise each difference becomes one named change of a
``ChannelOrderUpdated`` fact. Payment and cancellation are one-way: a later delivery
that no longer says "paid" (a retried, older body) does not un-pay an order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

Change = Literal["paid", "cancelled", "lines", "address"]


@dataclass(frozen=True)
class HeardBefore:
    """The channel's last word on an order, as stored (JSON shapes of the contracts)."""

    paid: bool
    cancelled: bool
    lines: list[dict[str, Any]] | None
    shipping_address: dict[str, Any] | None
    channel_updated_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    """What this delivery says (JSON shapes of the contracts)."""

    paid: bool
    cancelled: bool
    lines: list[dict[str, Any]]
    shipping_address: dict[str, Any]
    channel_updated_at: datetime | None


def is_stale(before: HeardBefore, now: Delivery) -> bool:
    """An older version of the order than the one already applied (both timed)."""
    return (
        before.channel_updated_at is not None
        and now.channel_updated_at is not None
        and now.channel_updated_at < before.channel_updated_at
    )


def changes(before: HeardBefore, now: Delivery) -> list[Change]:
    """What ``now`` says that differs from ``before``, in a stable order."""
    found: list[Change] = []
    if now.paid and not before.paid:
        found.append("paid")
    if now.cancelled and not before.cancelled:
        found.append("cancelled")
    if before.lines is not None and _line_keys(before.lines) != _line_keys(now.lines):
        found.append("lines")
    if before.shipping_address is not None and _address(before.shipping_address) != _address(
        now.shipping_address
    ):
        found.append("address")
    return found


def _line_keys(lines: list[dict[str, Any]]) -> list[tuple[str, int, Decimal]]:
    return [
        (str(ln["sku"]), int(ln["qty"]), Decimal(str(ln["unit_price"])))
        for ln in sorted(lines, key=lambda ln: int(ln["line_no"]))
    ]


def _address(address: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in address.items() if v not in (None, "")}
