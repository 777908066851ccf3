"""Inventory's allocation, policy and replenishment rules at their boundaries, as plain
objects: how lines are split over warehouses, stock a warehouse never had, ABC classes at
their thresholds and ties, a cap of an empty pool, and the replenishment sum to the unit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inventory_svc.domain.allocation import (
    Allocation,
    AllocationPlan,
    LineRejection,
    LineRequest,
    plan_allocation,
)
from inventory_svc.domain.policy import ChannelCap, cap_units, classify_abc
from inventory_svc.domain.replenishment import (
    ReplenishmentInput,
    Suggestion,
    apportion,
    is_news,
    suggest,
)

TEA, MUG = "SKU-TEA", "SKU-MUG"


def test_a_split_takes_each_line_from_the_warehouse_with_the_most_left() -> None:
    # No warehouse holds the five teas and the mug together, so each line is placed on
    # its own: where most of its SKU is left after the lines before it, ties by code.
    stock = {(TEA, "WH-A"): 3, (TEA, "WH-B"): 5, (MUG, "WH-A"): 4, (MUG, "WH-C"): 2}
    lines = [LineRequest(1, TEA, 2), LineRequest(2, MUG, 1), LineRequest(3, TEA, 3)]
    assert plan_allocation(lines, stock, {TEA, MUG}) == AllocationPlan(
        [
            Allocation(1, TEA, "WH-B", 2),
            Allocation(2, MUG, "WH-A", 1),
            Allocation(3, TEA, "WH-A", 3),
        ],
        [],
    )


def test_a_known_sku_no_warehouse_ever_stocked_is_rejected_with_nothing_available() -> None:
    lines = [LineRequest(1, TEA, 1), LineRequest(2, MUG, 1)]
    plan = plan_allocation(lines, {(TEA, "WH-A"): 5, (TEA, "WH-B"): 1}, {TEA, MUG})
    assert plan == AllocationPlan([], [LineRejection(2, MUG, 1, "insufficient", 0)])


def test_a_line_pinned_to_a_warehouse_without_the_sku_is_rejected() -> None:
    pinned = [LineRequest(1, TEA, 1, warehouse="WH-B")]
    plan = plan_allocation(pinned, {(TEA, "WH-A"): 5}, {TEA})
    assert plan == AllocationPlan([], [LineRejection(1, TEA, 1, "insufficient", 0)])


def test_a_cap_is_given_as_a_share_or_as_units_and_says_what_is_wrong() -> None:
    refusals = [
        ({}, "a cap is either a percent or a number of units"),
        ({"percent": Decimal(5), "units": 5}, "a cap is either a percent or a number of units"),
        ({"percent": Decimal("100.5")}, "a cap percent is between 0 and 100"),
        ({"units": -1}, "a cap in units is not negative"),
    ]
    for fields, reason in refusals:
        with pytest.raises(ValueError) as refused:
            ChannelCap(**fields)  # type: ignore[arg-type]
        assert str(refused.value) == reason


def test_a_share_of_an_empty_or_negative_pool_is_zero_units() -> None:
    everything = ChannelCap(percent=Decimal(100))
    assert (cap_units(everything, 0), cap_units(everything, -5), cap_units(everything, 7)) == (
        0,
        0,
        7,
    )


def test_abc_classes_at_the_80_percent_threshold() -> None:
    # A while the share *before* the SKU is under 80 %: at exactly 80 % it is B.
    assert classify_abc({"X": Decimal(79), "Y": Decimal(21)}) == {"X": "A", "Y": "A"}
    assert classify_abc({"X": Decimal(80), "Y": Decimal(20)}) == {"X": "A", "Y": "B"}


def test_abc_ties_are_ranked_by_code_and_small_or_no_sales_count() -> None:
    # B and A sold the same: A ranks first (90 % before it: B), then B (95 %: C).
    sales = {"B": Decimal(5), "A": Decimal(5), "X": Decimal(90)}
    assert classify_abc(sales) == {"X": "A", "A": "B", "B": "C"}
    assert classify_abc({"CHEAP": Decimal("0.50")}) == {"CHEAP": "A"}
    assert classify_abc({"IDLE": Decimal(0)}, {"NEW"}) == {"IDLE": "C", "NEW": "C"}


def test_a_suggestion_spells_out_its_sum_down_to_one_unit() -> None:
    # forecast 10 over 7 days, safety stock 2, nothing available, 11 on order
    inputs = ReplenishmentInput("SKU-1", "WH-A", 10.0, 7, 2, 0, 11)
    assert suggest(inputs) == Suggestion(
        "SKU-1",
        "WH-A",
        1,
        "forecast 10.0 over the 7-day lead time + safety stock 2 - available 0 - on order 11"
        " = 1.0: order 1",
        inputs,
    )


def test_float_noise_under_a_millionth_orders_no_extra_unit() -> None:
    noisy = ReplenishmentInput("S", "W", 10.0000004, 7, 0, 0, 0)
    assert suggest(noisy).suggested_qty == 10
    assert suggest(ReplenishmentInput("S", "W", 10.00001, 7, 0, 0, 0)).suggested_qty == 11


def test_one_unit_is_news_when_nothing_or_a_fifth_less_was_announced() -> None:
    assert is_news(1, None) and is_news(1, 0)
    assert is_news(6, 5)  # one unit, and 20 % of 5
    assert not is_news(0, 5)


def test_apportion_divides_by_the_sum_of_the_weights() -> None:
    assert apportion(8, {"WH-A": 3.0, "WH-B": 1.0, "WH-C": -2.0}) == {
        "WH-A": 6,
        "WH-B": 2,
        "WH-C": 0,
    }
