"""Allocation of a paid order's lines to warehouses, with plain objects."""

from __future__ import annotations

from inventory_svc.domain.allocation import LineRequest, plan_allocation

TEA, MUG = "SKU-TEA", "SKU-MUG"


def lines(*items: tuple[str, int]) -> list[LineRequest]:
    return [LineRequest(i, sku, qty) for i, (sku, qty) in enumerate(items, start=1)]


def test_one_warehouse_that_can_ship_everything_is_preferred() -> None:
    availability = {(TEA, "WH-A"): 10, (MUG, "WH-A"): 0, (TEA, "WH-B"): 3, (MUG, "WH-B"): 3}
    plan = plan_allocation(lines((TEA, 2), (MUG, 1)), availability, {TEA, MUG})
    assert plan.accepted
    assert {a.warehouse for a in plan.allocations} == {"WH-B"}


def test_lines_are_split_when_no_single_warehouse_has_everything() -> None:
    availability = {(TEA, "WH-A"): 5, (MUG, "WH-B"): 5}
    plan = plan_allocation(lines((TEA, 2), (MUG, 1)), availability, {TEA, MUG})
    assert [(a.sku, a.warehouse) for a in plan.allocations] == [(TEA, "WH-A"), (MUG, "WH-B")]


def test_a_preferred_warehouse_is_honoured_or_the_order_is_rejected() -> None:
    availability = {(TEA, "WH-A"): 5, (TEA, "WH-B"): 1}
    assert (
        plan_allocation(lines((TEA, 1)), availability, {TEA}, "WH-B").allocations[0].warehouse
        == "WH-B"
    )
    rejected = plan_allocation(lines((TEA, 2)), availability, {TEA}, "WH-B")
    assert not rejected.accepted
    assert rejected.rejections[0].reason == "insufficient"
    assert rejected.rejections[0].available == 1


def test_not_enough_stock_rejects_the_line_with_what_is_available() -> None:
    plan = plan_allocation(
        lines((TEA, 4), (MUG, 1)), {(TEA, "WH-A"): 3, (MUG, "WH-A"): 9}, {TEA, MUG}
    )
    assert not plan.accepted and not plan.allocations
    assert [(r.sku, r.reason, r.available) for r in plan.rejections] == [(TEA, "insufficient", 3)]


def test_unknown_skus_are_named() -> None:
    plan = plan_allocation(lines((TEA, 1), ("NOPE", 1)), {(TEA, "WH-A"): 3}, {TEA})
    assert [(r.sku, r.reason) for r in plan.rejections] == [("NOPE", "unknown_sku")]


def test_two_lines_of_one_sku_need_their_sum() -> None:
    plan = plan_allocation(lines((TEA, 2), (TEA, 2)), {(TEA, "WH-A"): 3}, {TEA})
    assert not plan.accepted
