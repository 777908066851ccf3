"""Inventory's domain at its edges, as plain objects: lines pinned to a warehouse by
routing take it first (all or none), a cap's JSON form and its validation, what one buyer
may still take."""

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
from inventory_svc.domain.policy import (
    ChannelCap,
    ChannelUsage,
    available_to_sell,
    cap_units,
    customer_left,
    within_customer_cap,
)


def test_pinned_lines_take_their_warehouse_and_the_others_are_planned_after() -> None:
    lines = [
        LineRequest(1, "A", 2, "WH-BJ"),
        LineRequest(2, "B", 1),
        LineRequest(3, "A", 3, "WH-BJ"),
    ]
    stock = {("A", "WH-BJ"): 5, ("A", "WH-SH"): 9, ("B", "WH-SH"): 1, ("B", "WH-BJ"): 0}
    assert plan_allocation(lines, stock, {"A", "B"}) == AllocationPlan(
        [
            Allocation(1, "A", "WH-BJ", 2),
            Allocation(2, "B", "WH-SH", 1),
            Allocation(3, "A", "WH-BJ", 3),
        ],
        [],
    )


def test_a_pinned_line_its_warehouse_cannot_serve_refuses_the_order_saying_what_is_left() -> None:
    lines = [LineRequest(1, "A", 2, "WH-BJ"), LineRequest(2, "A", 2, "WH-BJ")]
    plan = plan_allocation(lines, {("A", "WH-BJ"): 3, ("A", "WH-SH"): 10}, {"A"})
    assert plan == AllocationPlan([], [LineRejection(2, "A", 2, "insufficient", 1)])
    negative = plan_allocation([LineRequest(1, "A", 1, "WH-BJ")], {("A", "WH-BJ"): -2}, {"A"})
    assert negative.rejections == [LineRejection(1, "A", 1, "insufficient", 0)]
    exactly = plan_allocation([LineRequest(1, "A", 3, "WH-BJ")], {("A", "WH-BJ"): 3}, {"A"})
    assert exactly.accepted


def test_the_free_lines_after_the_pinned_ones_see_what_is_left() -> None:
    lines = [LineRequest(1, "A", 4, "WH-BJ"), LineRequest(2, "A", 2)]
    plan = plan_allocation(lines, {("A", "WH-BJ"): 5}, {"A"})
    assert plan == AllocationPlan([], [LineRejection(2, "A", 2, "insufficient", 1)])


def test_a_cap_is_a_percent_or_units_and_round_trips_through_json() -> None:
    assert ChannelCap(percent=Decimal("60")).to_json() == {"percent": "60"}
    assert ChannelCap(units=120).to_json() == {"units": 120}
    assert ChannelCap.from_json({"percent": 12.5}) == ChannelCap(percent=Decimal("12.5"))
    assert ChannelCap.from_json({"units": 7}) == ChannelCap(units=7)
    assert ChannelCap(percent=Decimal(0)).percent == 0 and ChannelCap(units=0).units == 0
    assert ChannelCap(percent=Decimal(100)).percent == 100
    for bad, message in (
        ({}, "either a percent or a number of units"),
        ({"percent": Decimal(1), "units": 1}, "either a percent or a number of units"),
        ({"percent": Decimal("100.01")}, "between 0 and 100"),
        ({"percent": Decimal("-0.01")}, "between 0 and 100"),
        ({"units": -1}, "not negative"),
    ):
        with pytest.raises(ValueError, match=message):
            ChannelCap(**bad)  # type: ignore[arg-type]
    assert cap_units(ChannelCap(percent=Decimal(60)), 1001) == 600
    assert cap_units(ChannelCap(percent=Decimal(60)), -5) == 0
    assert cap_units(None, 10) is None


def test_what_one_buyer_may_still_take() -> None:
    assert customer_left(None, 5) is None
    assert customer_left(3, 1) == 2
    assert customer_left(3, 5) == 0
    assert within_customer_cap(None, 100, 100)
    assert within_customer_cap(3, 1, 2)
    assert not within_customer_cap(3, 2, 2)


def test_what_a_channel_may_still_sell() -> None:
    assert available_to_sell(10, ChannelUsage(reserved=2, shipped=1, cap_units=5)) == 2
    assert available_to_sell(-3, ChannelUsage()) == 0
    assert available_to_sell(10, ChannelUsage(paused=True)) == 0
    assert available_to_sell(1, ChannelUsage(cap_units=5)) == 1


def test_unknown_skus_refuse_the_order_naming_only_those_lines() -> None:
    lines = [LineRequest(1, "A", 2), LineRequest(2, "Z", 3)]
    assert plan_allocation(lines, {("A", "W1"): 5}, {"A"}) == AllocationPlan(
        [], [LineRejection(2, "Z", 3, "unknown_sku")]
    )


def test_one_parcel_from_the_warehouse_with_most_spare_stock_or_the_first_by_name() -> None:
    lines = [LineRequest(1, "A", 2), LineRequest(2, "B", 1)]
    stock = {("A", "W1"): 5, ("B", "W1"): 5, ("A", "W2"): 9, ("B", "W2"): 2, ("A", "W0"): 9}
    plan = plan_allocation(lines, stock, {"A", "B"})
    assert plan == AllocationPlan([Allocation(1, "A", "W2", 2), Allocation(2, "B", "W2", 1)], [])
    tie = plan_allocation(lines, {**stock, ("B", "W2"): 1}, {"A", "B"})
    assert {a.warehouse for a in tie.allocations} == {"W1"}
    even = {("A", "W1"): 3, ("A", "W2"): 3}
    assert plan_allocation([LineRequest(1, "A", 1)], even, {"A"}).allocations == [
        Allocation(1, "A", "W1", 1)
    ]


def test_a_preferred_warehouse_serves_everything_or_the_order_says_what_it_has() -> None:
    stock = {("A", "W1"): 2, ("A", "W2"): 10}
    lines = [LineRequest(1, "A", 3)]
    assert plan_allocation(lines, stock, {"A"}, preferred_warehouse="W1") == AllocationPlan(
        [], [LineRejection(1, "A", 3, "insufficient", 2)]
    )
    assert plan_allocation(lines, stock, {"A"}, preferred_warehouse="W9").rejections == [
        LineRejection(1, "A", 3, "insufficient", 0)
    ]
    assert plan_allocation(lines, stock, {"A"}, preferred_warehouse="W2").allocations == [
        Allocation(1, "A", "W2", 3)
    ]


def test_short_in_total_names_what_there_is_and_enough_in_total_but_split_wrong_says_none() -> None:
    stock = {("A", "W1"): 2, ("A", "W2"): 1}
    assert plan_allocation([LineRequest(1, "A", 4)], stock, {"A"}).rejections == [
        LineRejection(1, "A", 4, "insufficient", 3)
    ]
    even = {("A", "W1"): 2, ("A", "W2"): 2}
    assert plan_allocation([LineRequest(1, "A", 4), LineRequest(2, "B", 0)], even, {"A", "B"}) == (
        AllocationPlan(
            [],
            [
                LineRejection(1, "A", 4, "insufficient", None),
                LineRejection(2, "B", 0, "insufficient", None),
            ],
        )
    )
