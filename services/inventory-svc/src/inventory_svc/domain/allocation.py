"""Allocation: which warehouse serves each line of a paid order, all lines or none.

Pure logic over a snapshot of availability. The snapshot may be stale by the time the
plan is applied; the guarded update in the database is what finally decides, and a plan
that loses a race is re-planned on fresh numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RejectionReason = Literal[
    "insufficient", "channel_cap", "channel_paused", "unknown_sku", "customer_limit"
]


@dataclass(frozen=True)
class LineRequest:
    line_no: int
    sku: str
    qty: int
    #: The warehouse this line must ship from (chosen by routing), if any.
    warehouse: str | None = None


@dataclass(frozen=True)
class Allocation:
    line_no: int
    sku: str
    warehouse: str
    qty: int


@dataclass(frozen=True)
class LineRejection:
    line_no: int
    sku: str
    qty: int
    reason: RejectionReason
    available: int | None = None


@dataclass(frozen=True)
class AllocationPlan:
    allocations: list[Allocation]
    rejections: list[LineRejection]

    @property
    def accepted(self) -> bool:
        return not self.rejections and bool(self.allocations)


#: Available units per (sku, warehouse).
Availability = dict[tuple[str, str], int]


def plan_allocation(
    lines: list[LineRequest],
    availability: Availability,
    known_skus: set[str],
    preferred_warehouse: str | None = None,
) -> AllocationPlan:
    """Allocate every line or explain, per line, why the order cannot be served.

    With a preferred warehouse, every line must come from it. Otherwise a warehouse
    that can ship the whole order is preferred (one parcel), the one with the most
    spare stock first; failing that, each line goes to the warehouse with the most
    available for its SKU.
    """
    unknown = [
        LineRejection(line.line_no, line.sku, line.qty, "unknown_sku")
        for line in lines
        if line.sku not in known_skus
    ]
    if unknown:
        return AllocationPlan([], unknown)

    if preferred_warehouse is None and any(line.warehouse for line in lines):
        return _plan_with_fixed_lines(lines, availability)

    needed: dict[str, int] = {}
    for line in lines:
        needed[line.sku] = needed.get(line.sku, 0) + line.qty
    warehouses = sorted({wh for (_, wh) in availability})

    def can_serve_all(wh: str) -> bool:
        return all(availability.get((sku, wh), 0) >= qty for sku, qty in needed.items())

    if preferred_warehouse is not None:
        candidates = [preferred_warehouse] if can_serve_all(preferred_warehouse) else []
    else:
        candidates = sorted(
            (wh for wh in warehouses if can_serve_all(wh)),
            key=lambda wh: (-sum(availability.get((s, wh), 0) for s in needed), wh),
        )
    if candidates:
        wh = candidates[0]
        return AllocationPlan([Allocation(ln.line_no, ln.sku, wh, ln.qty) for ln in lines], [])

    if preferred_warehouse is None:
        split = _split_by_line(lines, availability, warehouses)
        if split is not None:
            return AllocationPlan(split, [])

    rejections = []
    for line in lines:
        total = (
            availability.get((line.sku, preferred_warehouse), 0)
            if preferred_warehouse is not None
            else sum(availability.get((line.sku, wh), 0) for wh in warehouses)
        )
        if total < needed[line.sku]:
            rejections.append(
                LineRejection(line.line_no, line.sku, line.qty, "insufficient", max(total, 0))
            )
    if not rejections:  # enough in total but not servable line by line
        rejections = [
            LineRejection(ln.line_no, ln.sku, ln.qty, "insufficient", None) for ln in lines
        ]
    return AllocationPlan([], rejections)


def _split_by_line(
    lines: list[LineRequest], availability: Availability, warehouses: list[str]
) -> list[Allocation] | None:
    remaining = dict(availability)
    allocations = []
    for line in lines:
        options = sorted(
            (wh for wh in warehouses if remaining.get((line.sku, wh), 0) >= line.qty),
            key=lambda wh: (-remaining.get((line.sku, wh), 0), wh),
        )
        if not options:
            return None
        wh = options[0]
        remaining[(line.sku, wh)] -= line.qty
        allocations.append(Allocation(line.line_no, line.sku, wh, line.qty))
    return allocations


def _plan_with_fixed_lines(lines: list[LineRequest], availability: Availability) -> AllocationPlan:
    """Lines with a warehouse of their own take it first; the others are planned after."""
    remaining = dict(availability)
    allocations: list[Allocation] = []
    rejections: list[LineRejection] = []
    for line in lines:
        if line.warehouse is None:
            continue
        have = remaining.get((line.sku, line.warehouse), 0)
        if have >= line.qty:
            remaining[(line.sku, line.warehouse)] = have - line.qty
            allocations.append(Allocation(line.line_no, line.sku, line.warehouse, line.qty))
        else:
            rejections.append(
                LineRejection(line.line_no, line.sku, line.qty, "insufficient", max(have, 0))
            )
    if rejections:
        return AllocationPlan([], rejections)
    free = [line for line in lines if line.warehouse is None]
    if free:
        rest = plan_allocation(free, remaining, {line.sku for line in free})
        if not rest.accepted:
            return AllocationPlan([], rest.rejections)
        allocations.extend(rest.allocations)
    allocations.sort(key=lambda a: a.line_no)
    return AllocationPlan(allocations, [])
