"""How much to order from the supplier, and whether a suggestion is news. Pure.

    suggested = ceil(forecast over the lead time + safety stock - available - on order)

(never below zero). The forecast covers the days until an order placed today arrives; the
safety stock is what must still be there when it does; what is free on the shelf and
what is already on its way are subtracted. The reason spells the sum out, so a buyer can
check it without opening the model.

A suggestion is *announced* (``ReplenishmentSuggested``, for A-class SKUs) when it
appears (was 0 or never announced) or changes materially (by at least
:data:`MATERIAL_CHANGE` of the last announced quantity, and by at least one unit) — not at
every refresh, which would flood the buyers with the same advice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

#: Supplier lead time when none is set for the SKU (PUT /skus/{sku}/supply).
DEFAULT_LEAD_TIME_DAYS = 7
#: A change of at least this share of the last announced quantity is announced again.
MATERIAL_CHANGE = 0.20


@dataclass(frozen=True)
class ReplenishmentInput:
    sku: str
    warehouse: str
    forecast_over_lead_time: float
    lead_time_days: int
    safety_stock: int
    available: int
    on_order: int


@dataclass(frozen=True)
class Suggestion:
    sku: str
    warehouse: str
    suggested_qty: int
    reason: str
    inputs: ReplenishmentInput


def suggest(inputs: ReplenishmentInput) -> Suggestion:
    """The order quantity for one SKU in one warehouse, with the sum that gives it."""
    need = (
        inputs.forecast_over_lead_time
        + inputs.safety_stock
        - max(inputs.available, 0)
        - inputs.on_order
    )
    # A hair over an integer (float noise) must not order one more unit.
    qty = max(math.ceil(round(need, 6)), 0)
    terms = (
        f"forecast {inputs.forecast_over_lead_time:.1f} over the {inputs.lead_time_days}-day "
        f"lead time + safety stock {inputs.safety_stock} - available {max(inputs.available, 0)}"
        f" - on order {inputs.on_order} = {need:.1f}"
    )
    reason = f"{terms}: order {qty}" if qty > 0 else f"{terms}: covered, nothing to order"
    return Suggestion(inputs.sku, inputs.warehouse, qty, reason, inputs)


def is_news(suggested_qty: int, announced_qty: int | None) -> bool:
    """Should this suggestion be announced, given the quantity announced last (if any)?"""
    if suggested_qty <= 0:
        return False
    if not announced_qty:
        return True
    change = abs(suggested_qty - announced_qty)
    return change >= 1 and change >= MATERIAL_CHANGE * announced_qty


def apportion(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split a SKU-wide quantity (its safety stock) over warehouses by ``weights`` (their
    share of demand), rounding up so no warehouse's part is lost to rounding; equal parts
    when no warehouse has any weight."""
    if not weights:
        return {}
    weight_sum = sum(max(w, 0.0) for w in weights.values())
    if weight_sum <= 0:
        return {wh: math.ceil(total / len(weights)) for wh in weights}
    return {wh: math.ceil(total * max(w, 0.0) / weight_sum) for wh, w in weights.items()}
