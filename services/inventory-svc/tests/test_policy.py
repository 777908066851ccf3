"""Per-SKU policy rules as plain functions: caps, available-to-sell, safety, ABC."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inventory_svc.domain.policy import (
    ChannelCap,
    ChannelUsage,
    available_to_sell,
    cap_units,
    channel_verdict,
    classify_abc,
    effective_abc,
    safety_transition,
)


def test_a_percentage_cap_is_a_share_of_the_base_rounded_down() -> None:
    assert cap_units(ChannelCap(percent=Decimal(60)), 1_000) == 600
    assert cap_units(ChannelCap(percent=Decimal(60)), 1_001) == 600
    assert cap_units(ChannelCap(percent=Decimal("33.3")), 10) == 3
    assert cap_units(ChannelCap(units=7), 1_000) == 7
    assert cap_units(None, 1_000) is None


def test_caps_over_100_percent_or_negative_are_refused() -> None:
    with pytest.raises(ValueError):
        ChannelCap(percent=Decimal("100.5"))
    with pytest.raises(ValueError):
        ChannelCap(units=-1)
    with pytest.raises(ValueError):
        ChannelCap()


def test_reserved_and_shipped_units_count_against_the_cap() -> None:
    usage = ChannelUsage(reserved=4, shipped=1, cap_units=6)
    assert channel_verdict(usage, 1) == "ok"
    assert channel_verdict(usage, 2) == "channel_cap"
    assert channel_verdict(ChannelUsage(paused=True), 1) == "channel_paused"
    assert channel_verdict(ChannelUsage(reserved=10**6), 1) == "ok"  # no cap


def test_available_to_sell_is_the_pool_within_the_cap_and_zero_when_paused() -> None:
    assert available_to_sell(100, ChannelUsage(reserved=50, cap_units=60)) == 10
    assert available_to_sell(5, ChannelUsage(reserved=50, cap_units=60)) == 5
    assert available_to_sell(5, ChannelUsage(reserved=70, cap_units=60)) == 0
    assert available_to_sell(5, ChannelUsage(paused=True)) == 0
    assert available_to_sell(5, ChannelUsage()) == 5


def test_safety_stock_answers_only_on_a_crossing() -> None:
    assert safety_transition(False, 4, 5) == "low"
    assert safety_transition(True, 3, 5) is None  # still low: raised once
    assert safety_transition(True, 5, 5) == "cleared"
    assert safety_transition(False, 9, 5) is None
    assert safety_transition(False, 0, 0) is None  # no safety stock, nothing to cross


def test_abc_classes_by_cumulative_sales_value() -> None:
    sales = {
        "A1": Decimal(700),
        "A2": Decimal(150),  # 70 % before it: still A
        "B1": Decimal(100),  # 85 % before it: B
        "C1": Decimal(30),  # 95 % before it: C
        "C2": Decimal(20),
    }
    classes = classify_abc(sales, {"IDLE"})
    assert classes == {"A1": "A", "A2": "A", "B1": "B", "C1": "C", "C2": "C", "IDLE": "C"}
    assert classify_abc({}) == {}
    assert effective_abc("C", "A") == "A" and effective_abc("B", None) == "B"
