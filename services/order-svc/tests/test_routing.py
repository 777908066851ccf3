"""Routing as a pure function: a table of cases (nearest vs cheapest vs capability, split
and no split), then the details (distances, exclusions, unknown stock)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from order_svc.domain.order import IllegalTransition, Line, Order, OrderState
from order_svc.domain.routing import (
    RouteLine,
    StockView,
    Warehouse,
    Weights,
    destination_point,
    haversine_km,
    route,
)

SH = Warehouse(
    "WH-SH",
    "CN-SH",
    31.23,
    121.47,
    frozenset({"cold_chain"}),
    {"CN-SH": Decimal("8"), "CN-BJ": Decimal("18"), "CN-ZJ": Decimal("9")},
)
BJ = Warehouse(
    "WH-BJ",
    "CN-BJ",
    39.90,
    116.40,
    frozenset(),
    {"CN-SH": Decimal("15"), "CN-BJ": Decimal("6"), "CN-ZJ": Decimal("14")},
)
HZ = Warehouse(
    "WH-HZ",
    "CN-ZJ",
    30.27,
    120.16,
    frozenset(),
    {"CN-SH": Decimal("5"), "CN-BJ": Decimal("16"), "CN-ZJ": Decimal("4")},
)
ALL = [SH, BJ, HZ]
NEAR = Weights(stock=0.5, distance=0.4, cost=0.1)
CHEAP = Weights(stock=0.5, distance=0.1, cost=0.4)


def stock(**levels: int) -> StockView:
    """``stock(A_SH=3)``: 3 units of SKU "A" in WH-SH."""
    return StockView(
        {(key.split("_")[0], f"WH-{key.split('_')[1]}"): qty for key, qty in levels.items()}
    )


def lines(*skus: str) -> list[RouteLine]:
    return [RouteLine(n, sku, 1) for n, sku in enumerate(skus, start=1)]


@dataclass
class Case:
    name: str
    lines: list[RouteLine]
    region: str
    stock: StockView
    expected: str  # "routed" | "deferred" | "impossible"
    #: line_no -> warehouse, for routed cases.
    placement: dict[int, str] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    allow_split: bool = True
    weights: Weights = field(default_factory=lambda: NEAR)
    warehouses: list[Warehouse] = field(default_factory=lambda: list(ALL))
    reason: str = ""


CASES = [
    Case(
        "the nearest warehouse wins when distance weighs most",
        lines("A"),
        "CN-SH",
        stock(A_SH=5, A_BJ=5, A_HZ=5),
        "routed",
        {1: "WH-SH"},
        weights=NEAR,
    ),
    Case(
        "the cheapest warehouse wins when cost weighs most",
        lines("A"),
        "CN-SH",
        stock(A_SH=5, A_BJ=5, A_HZ=5),
        "routed",
        {1: "WH-HZ"},
        weights=CHEAP,
    ),
    Case(
        "a cold-chain order goes to the cold-chain warehouse, however far",
        lines("A"),
        "CN-BJ",
        stock(A_SH=5, A_BJ=5, A_HZ=5),
        "routed",
        {1: "WH-SH"},
        requirements=("cold_chain",),
    ),
    Case(
        "requirements that are no capability do not restrict the choice",
        lines("A"),
        "CN-BJ",
        stock(A_SH=5, A_BJ=5, A_HZ=5),
        "routed",
        {1: "WH-BJ"},
        requirements=("fragile", "signature"),
    ),
    Case(
        "a warehouse without the stock loses to one that holds the whole order",
        lines("A", "B"),
        "CN-SH",
        stock(A_SH=5, B_SH=0, A_HZ=5, B_HZ=5, A_BJ=5, B_BJ=5),
        "routed",
        {1: "WH-HZ", 2: "WH-HZ"},
    ),
    Case(
        "one parcel is preferred to a split even from a farther warehouse",
        lines("A", "B"),
        "CN-SH",
        stock(A_SH=5, B_SH=0, A_BJ=5, B_BJ=5),
        "routed",
        {1: "WH-BJ", 2: "WH-BJ"},
        warehouses=[SH, BJ],
    ),
    Case(
        "split when no warehouse can serve every line and the channel allows it",
        lines("A", "B"),
        "CN-SH",
        stock(A_SH=5, B_BJ=5),
        "routed",
        {1: "WH-SH", 2: "WH-BJ"},
    ),
    Case(
        "no split allowed: routing defers to inventory",
        lines("A", "B"),
        "CN-SH",
        stock(A_SH=5, B_BJ=5),
        "deferred",
        allow_split=False,
        reason="does not allow splits",
    ),
    Case(
        "no split allowed for a cold-chain order: impossible",
        lines("A", "B"),
        "CN-SH",
        stock(A_SH=5, B_BJ=5),
        "impossible",
        requirements=("cold_chain",),
        allow_split=False,
        reason="cold_chain: no single warehouse",
    ),
    Case(
        "cold chain but no cold-chain warehouse: impossible",
        lines("A"),
        "CN-SH",
        stock(A_BJ=5, A_HZ=5),
        "impossible",
        requirements=("cold_chain",),
        warehouses=[BJ, HZ],
        reason="no warehouse has the capability cold_chain",
    ),
    Case(
        "cold chain and the cold-chain warehouse is out of stock: impossible",
        lines("A"),
        "CN-SH",
        stock(A_SH=0, A_BJ=5),
        "impossible",
        requirements=("cold_chain",),
        reason="not enough stock for A",
    ),
    Case(
        "not enough stock anywhere: routing defers (inventory has the last word)",
        lines("A"),
        "CN-SH",
        stock(A_SH=0, A_BJ=0),
        "deferred",
        reason="not enough stock for A",
    ),
    Case(
        "no warehouse known yet: inventory picks as before",
        lines("A"),
        "CN-SH",
        stock(),
        "deferred",
        warehouses=[],
        reason="no warehouse known yet",
    ),
    Case(
        "a SKU whose stock is not known yet: inventory picks",
        lines("NEW"),
        "CN-SH",
        stock(A_SH=1),
        "deferred",
        reason="no stock known yet for NEW",
    ),
    Case(
        "a cold-chain order of a SKU not known yet is pinned to the cold-chain warehouse",
        lines("NEW"),
        "CN-BJ",
        stock(),
        "routed",
        {1: "WH-SH"},
        requirements=("cold_chain",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_routing_table(case: Case) -> None:
    decision = route(
        case.lines,
        region=case.region,
        requirements=case.requirements,
        warehouses=case.warehouses,
        stock=case.stock,
        allow_split=case.allow_split,
        weights=case.weights,
    )
    assert decision.outcome == case.expected, decision
    assert decision.warehouse_of() == case.placement
    assert decision.split == (len(set(case.placement.values())) > 1)
    assert case.reason in (decision.reason or "")
    assert decision.requirements == tuple(sorted(case.requirements))


def test_every_candidate_is_scored_with_its_parts_best_first() -> None:
    decision = route(
        lines("A"),
        region="CN-SH",
        requirements=[],
        warehouses=ALL,
        stock=stock(A_SH=5, A_BJ=5, A_HZ=5),
        weights=NEAR,
    )
    by_code = {c.warehouse: c for c in decision.candidates}
    assert [c.warehouse for c in decision.candidates] == ["WH-SH", "WH-HZ", "WH-BJ"]
    assert by_code["WH-SH"].distance_km == 0.0
    assert by_code["WH-BJ"].distance_km == pytest.approx(1067, abs=10)
    assert by_code["WH-HZ"].shipping_cost == Decimal("5")
    # Nearest: full distance points; dearest (BJ, 15) no cost points; all hold the stock.
    assert by_code["WH-SH"].score == pytest.approx(0.5 + 0.4 + 0.1 * (15 - 8) / (15 - 5))
    assert by_code["WH-BJ"].score == pytest.approx(0.5 + 0.0 + 0.0)
    assert decision.shipments[0].score == by_code["WH-SH"].score


def test_lines_of_one_sku_are_counted_together_against_the_stock() -> None:
    two = [RouteLine(1, "A", 3), RouteLine(2, "A", 3)]
    decision = route(
        two,
        region="CN-SH",
        requirements=[],
        warehouses=ALL,
        stock=stock(A_SH=4, A_BJ=6),
    )
    assert decision.warehouse_of() == {1: "WH-BJ", 2: "WH-BJ"}


def test_a_refused_warehouse_is_routed_around() -> None:
    decision = route(
        lines("A"),
        region="CN-SH",
        requirements=[],
        warehouses=ALL,
        stock=stock(A_SH=5, A_BJ=5, A_HZ=5),
        weights=NEAR,
        excluded=["WH-SH"],
    )
    assert decision.warehouse_of() == {1: "WH-HZ"}
    refused_all = route(
        lines("A"),
        region="CN-SH",
        requirements=["cold_chain"],
        warehouses=ALL,
        stock=stock(A_SH=5),
        excluded=["WH-SH"],
    )
    assert refused_all.outcome == "impossible"


def test_the_destination_is_the_region_centre_else_its_warehouses_else_unknown() -> None:
    assert destination_point("CN-SH", ALL) == (31.23, 121.47)
    local = Warehouse("WH-X", "XX-1", 10.0, 20.0)
    assert destination_point("XX-1", [local, SH]) == (10.0, 20.0)
    assert destination_point("XX-2", [local, SH]) is None
    unknown = route(
        lines("A"),
        region="XX-2",
        requirements=[],
        warehouses=ALL,
        stock=stock(A_SH=1, A_BJ=1, A_HZ=1),
    )
    assert all(c.distance_km is None for c in unknown.candidates)
    assert unknown.outcome == "routed"


def test_haversine_shanghai_beijing() -> None:
    assert haversine_km((31.23, 121.47), (39.90, 116.40)) == pytest.approx(1067, abs=10)


# -- the order's side of routing -----------------------------------------------------


def paid_order() -> Order:
    now = datetime.now(UTC)
    order = Order.receive(
        id=uuid.uuid4(),
        channel="web",
        channel_order_id="W-1",
        lines=[Line(1, "A", 1, Decimal("1")), Line(2, "B", 1, Decimal("1"))],
        currency="CNY",
        priority="normal",
        at=now,
    )
    order.mark_paid(now)
    return order


def test_routing_pins_lines_of_a_paid_order_and_unpins_them() -> None:
    order = paid_order()
    order.assign_warehouses({1: "WH-SH", 2: "WH-BJ"})
    assert [ln.warehouse for ln in order.lines] == ["WH-SH", "WH-BJ"]
    order.assign_warehouses({})
    assert [ln.warehouse for ln in order.lines] == [None, None]


def test_a_reserved_order_cannot_be_re_pinned_and_moves_on_to_routed() -> None:
    order = paid_order()
    now = datetime.now(UTC)
    order.reserve({1: "WH-SH", 2: "WH-SH"}, now)
    with pytest.raises(IllegalTransition):
        order.assign_warehouses({1: "WH-BJ"})
    order.confirm(now)
    order.route("WH-SH", now)
    assert order.state is OrderState.ROUTED
    assert order.pending[-1].reason == "routed: WH-SH"


def test_impossible_routing_is_an_exception_the_queue_can_classify() -> None:
    order = paid_order()
    order.routing_impossible("no warehouse has the capability cold_chain", datetime.now(UTC))
    assert order.state is OrderState.EXCEPTION
    assert order.exception_reason == (
        "routing_impossible (no warehouse has the capability cold_chain)"
    )
