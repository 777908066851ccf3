"""Routing's whole decision at its edges, as plain objects: deferred and impossible with
their exact reasons and requirements, a split by default with its candidates, distances
to a tenth of a kilometre and stock fit to four places."""

from __future__ import annotations

from decimal import Decimal

from order_svc.domain.routing import (
    REGION_CENTRES,
    RouteLine,
    StockView,
    Warehouse,
    haversine_km,
    route,
)

SH = Warehouse("WH-SH", "CN-SH", 31.23, 121.47, frozenset({"cold_chain"}), {"CN-ZJ": Decimal("8")})
BJ = Warehouse("WH-BJ", "CN-BJ", 39.9, 116.4, frozenset(), {"CN-ZJ": Decimal("12")})
A, B = RouteLine(1, "A", 2), RouteLine(2, "B", 1)


def km(warehouse: Warehouse) -> float:
    return round(
        haversine_km(REGION_CENTRES["CN-ZJ"], (warehouse.latitude, warehouse.longitude)), 1
    )


def test_no_warehouse_or_no_stock_known_defers_with_the_reason_and_requirements() -> None:
    nothing = route(
        [A], region="CN-ZJ", requirements=["gift", "gift"], warehouses=[], stock=StockView({})
    )
    assert (nothing.outcome, nothing.reason, nothing.requirements) == (
        "deferred",
        "no warehouse known yet",
        ("gift",),
    )
    unknown = route(
        [A, B, RouteLine(3, "C", 1)],
        region="CN-ZJ",
        requirements=["gift"],
        warehouses=[SH, BJ],
        stock=StockView({("C", "WH-SH"): 1}),
    )
    assert (unknown.outcome, unknown.reason, unknown.requirements) == (
        "deferred",
        "no stock known yet for A, B",
        ("gift",),
    )


def test_lines_no_single_warehouse_holds_are_split_by_default() -> None:
    stock = StockView({("A", "WH-SH"): 5, ("B", "WH-BJ"): 5})
    decision = route([A, B], region="CN-ZJ", requirements=[], warehouses=[SH, BJ], stock=stock)
    assert decision.outcome == "routed" and decision.split
    assert [(s.warehouse, s.line_nos) for s in decision.shipments] == [
        ("WH-SH", (1,)),
        ("WH-BJ", (2,)),
    ]
    assert [
        (c.warehouse, c.stock_fit, c.distance_km, c.shipping_cost) for c in decision.candidates
    ] == [
        ("WH-SH", round(2 / 3, 4), km(SH), Decimal("8")),
        ("WH-BJ", round(1 / 3, 4), km(BJ), Decimal("12")),
    ]
    assert decision.candidates[0].score == round(0.5 * round(2 / 3, 6) + 0.3 + 0.2, 4)
    assert decision.requirements == ()


def test_what_cannot_be_served_is_deferred_or_impossible_with_its_capability() -> None:
    stock = StockView({("A", "WH-SH"): 1, ("A", "WH-BJ"): 1})
    short = route([A], region="CN-ZJ", requirements=[], warehouses=[SH, BJ], stock=stock)
    assert (short.outcome, short.reason) == (
        "deferred",
        "not enough stock for A in the eligible warehouses",
    )
    assert [c.warehouse for c in short.candidates] == ["WH-SH", "WH-BJ"]
    cold = route([A], region="CN-ZJ", requirements=["cold_chain"], warehouses=[SH, BJ], stock=stock)
    assert (cold.outcome, cold.reason, cold.requirements) == (
        "impossible",
        "cold_chain: not enough stock for A in the eligible warehouses",
        ("cold_chain",),
    )
    assert [c.warehouse for c in cold.candidates] == ["WH-SH"]
    nowhere = route([A], region="CN-ZJ", requirements=["cold_chain"], warehouses=[BJ], stock=stock)
    assert (nowhere.outcome, nowhere.reason) == (
        "impossible",
        "no warehouse has the capability cold_chain",
    )
