"""Per-SKU policy: channel allocation caps, caps per customer, safety stock, ABC classes.
Pure logic.

The database applies these rules with guarded updates (see the repository); the numbers
it compares against (a channel's cap in units, whether a crossing happened) come from
here, so the rules are written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

AbcClass = Literal["A", "B", "C"]
ChannelVerdict = Literal["ok", "channel_cap", "channel_paused"]
SafetyTransition = Literal["low", "cleared"]


@dataclass(frozen=True)
class ChannelCap:
    """A channel's allocation cap: a share of the total on hand, or a number of units."""

    percent: Decimal | None = None
    units: int | None = None

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.units is None):
            raise ValueError("a cap is either a percent or a number of units")
        if self.percent is not None and not Decimal(0) <= self.percent <= Decimal(100):
            raise ValueError("a cap percent is between 0 and 100")
        if self.units is not None and self.units < 0:
            raise ValueError("a cap in units is not negative")

    def to_json(self) -> dict[str, str | int]:
        if self.percent is not None:
            return {"percent": str(self.percent)}
        assert self.units is not None
        return {"units": self.units}

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> ChannelCap:
        if "percent" in raw:
            return cls(percent=Decimal(str(raw["percent"])))
        units = raw["units"]
        assert isinstance(units, int)
        return cls(units=units)


def cap_units(cap: ChannelCap | None, base_units: int) -> int | None:
    """The cap in units, given the base (total on hand + units shipped in the period).

    A percentage is rounded down: 60 % of 1,001 units is 600, never 601.
    """
    if cap is None:
        return None
    if cap.units is not None:
        return cap.units
    assert cap.percent is not None
    units = (Decimal(max(base_units, 0)) * cap.percent / 100).to_integral_value(ROUND_FLOOR)
    return int(units)


@dataclass(frozen=True)
class ChannelUsage:
    """What one channel holds of a SKU: open reservations plus units shipped in the period."""

    reserved: int = 0
    shipped: int = 0
    cap_units: int | None = None
    paused: bool = False

    @property
    def used(self) -> int:
        return self.reserved + self.shipped

    @property
    def headroom(self) -> int | None:
        """Units the channel may still take (None: no cap)."""
        return None if self.cap_units is None else max(self.cap_units - self.used, 0)


def channel_verdict(usage: ChannelUsage, qty: int) -> ChannelVerdict:
    """May the channel take ``qty`` more units? (The same test the guarded update makes.)"""
    if usage.paused:
        return "channel_paused"
    if usage.cap_units is not None and usage.used + qty > usage.cap_units:
        return "channel_cap"
    return "ok"


def available_to_sell(available: int, usage: ChannelUsage) -> int:
    """What a channel may still sell: the pool, limited by its cap, zero when paused."""
    if usage.paused:
        return 0
    headroom = usage.headroom
    pool = max(available, 0)
    return pool if headroom is None else min(pool, headroom)


def customer_left(max_per_customer: int | None, held: int) -> int | None:
    """Units one buyer may still take of a SKU capped per customer (None: no cap).

    ``held`` is what the buyer holds or bought (open reservations and shipped units;
    released ones were given back), so a cancelled order frees its allowance.
    """
    if max_per_customer is None:
        return None
    return max(max_per_customer - held, 0)


def within_customer_cap(max_per_customer: int | None, held: int, qty: int) -> bool:
    """May the buyer take ``qty`` more? (The same test the guarded upsert makes.)"""
    return max_per_customer is None or held + qty <= max_per_customer


def safety_transition(was_low: bool, available: int, safety_stock: int) -> SafetyTransition | None:
    """``low`` when available crosses below safety stock, ``cleared`` when it is back.

    Only a crossing answers: staying below (or above) changes nothing, so StockLow is
    raised once per crossing. A safety stock of 0 can never be crossed below.
    """
    below = available < safety_stock
    if below and not was_low:
        return "low"
    if was_low and not below:
        return "cleared"
    return None


def classify_abc(
    sales_value: Mapping[str, Decimal], skus: set[str] | None = None
) -> dict[str, AbcClass]:
    """ABC classes from sales value: A the top 80 % cumulative, B the next 15 %, C the rest.

    SKUs are ranked by value (then code, for a stable answer); a SKU is A while the
    cumulative share *before* it is under 80 %, so the SKU that crosses 80 % is A too.
    SKUs in ``skus`` without sales are C.
    """
    ranked = sorted(
        ((sku, value) for sku, value in sales_value.items() if value > 0),
        key=lambda item: (-item[1], item[0]),
    )
    total = sum((value for _, value in ranked), Decimal(0))
    classes: dict[str, AbcClass] = {sku: "C" for sku in (skus or set()) | set(sales_value)}
    cumulative = Decimal(0)
    for sku, value in ranked:
        share_before = cumulative / total
        classes[sku] = (
            "A"
            if share_before < Decimal("0.80")
            else ("B" if share_before < Decimal("0.95") else "C")
        )
        cumulative += value
    return classes


def effective_abc(computed: AbcClass, override: AbcClass | None) -> AbcClass:
    return override or computed
