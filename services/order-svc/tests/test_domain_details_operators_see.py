"""What order-svc's domain tells the people who look at an order, as plain objects: the
consistency check's details, the reasons a resolution or a policy is refused, what each
step records in the order's history, the routing decision's parts, and how the workflow
rules move an order (approvals, holds, the facts they see, their reasons)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from order_svc.domain import routing
from order_svc.domain.consistency import HeldStock, Kind, Line, OrderSnapshot, compare
from order_svc.domain.credit_policy import CreditPolicy
from order_svc.domain.exceptions import Action, ResolutionRefused, plan_resolution
from order_svc.domain.order import SYSTEM, IllegalTransition, Order, OrderState, Transition
from order_svc.domain.order import Line as OrderLine
from order_svc.domain.sla import Deadline, PolicyError, SlaPolicy, deadline_for
from order_svc.domain.workflow import advance, next_step, order_facts, parse_rules, render_reason

S = OrderState
NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
SETTLED = NOW - timedelta(minutes=5)


def oid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


# -- the consistency check ------------------------------------------------------------------


def test_each_disagreement_says_what_each_side_holds() -> None:
    two = (Line(1, "TEA", 2, "WH-SH"), Line(2, "CUP", 1))
    orders = [
        OrderSnapshot(oid(2), "reserved", two, SETTLED),
        OrderSnapshot(oid(3), "pending_payment", two, SETTLED),
        OrderSnapshot(oid(4), "confirmed", two, SETTLED),
    ]
    held = [
        HeldStock(oid(1), (), SETTLED),
        HeldStock(oid(3), two[:1], SETTLED),
        HeldStock(oid(4), (Line(1, "TEA", 3, "WH-SH"),), SETTLED),
    ]
    found = compare(orders, held, now=NOW, grace=timedelta(seconds=30))
    assert {d.order_id.int: d.detail for d in found} == {
        1: "inventory holds no lines for an order order-svc does not know",
        2: "the order is reserved but inventory holds nothing for it "
        "(lines: line 1: 2 x TEA at WH-SH, line 2: 1 x CUP)",
        3: "the order is pending_payment (not paid) but inventory holds line 1: 2 x TEA at WH-SH",
        4: "line 1: ordered 2 x TEA at WH-SH, reserved 3 x TEA at WH-SH; "
        "line 2: ordered 1 x CUP, nothing reserved",
    }


def test_a_change_within_the_grace_period_skips_only_that_order() -> None:
    lines = (Line(1, "TEA", 2),)
    orders = [
        OrderSnapshot(oid(1), "reserved", lines, NOW),  # just reserved: inventory's event in flight
        OrderSnapshot(oid(2), "reserved", lines, SETTLED),
    ]
    held = [HeldStock(oid(3), lines, NOW), HeldStock(oid(4), lines, SETTLED)]
    found = compare(orders, held, now=NOW, grace=timedelta(seconds=30))
    assert [(d.order_id.int, d.kind) for d in found] == [
        (2, Kind.NO_RESERVATION),
        (4, Kind.UNKNOWN_ORDER),
    ]


# -- refusals -------------------------------------------------------------------------------


def test_refused_resolutions_tell_the_operator_why() -> None:
    refusals = [
        (
            Action.RETRY,
            "stock_rejected",
            S.PAID,
            "nothing to retry: the order is paid and the cause is stock_rejected",
        ),
        (
            Action.RELEASE,
            "stock_rejected",
            S.EXCEPTION,
            "the order is held by this exception: retry or cancel it",
        ),
        (
            Action.CANCEL,
            "sla_breached",
            S.SHIPPED,
            "an order in state shipped can no longer be cancelled",
        ),
    ]
    for action, cause, state, reason in refusals:
        with pytest.raises(ResolutionRefused) as refused:
            plan_resolution(action, cause, state)
        assert str(refused.value) == reason


def test_a_credit_limit_of_zero_checks_every_paid_amount_and_a_negative_one_is_refused() -> None:
    assert CreditPolicy.of(payment_terms=[], amount_over=Decimal(0)).reason(
        channel="web", payment_terms=None, total=Decimal("0.01")
    )
    with pytest.raises(ValueError) as refused:
        CreditPolicy.of(amount_over=Decimal("-0.01"))
    assert str(refused.value) == "amount_over must not be negative"


def test_an_sla_may_be_under_a_second_and_a_bad_one_is_named() -> None:
    half = SlaPolicy.with_overrides({"review": {"*": {"normal": 0.5}}})
    assert deadline_for(half, "review", "web", "normal", NOW) == Deadline(
        "review", NOW, NOW + timedelta(seconds=0.5)
    )
    for overrides, reason in [
        ({"nope": {"*": {"normal": 1}}}, "unknown SLA stage 'nope'"),
        ({"review": {"web": {"urgent": 0}}}, "SLA review/web/urgent must be > 0"),
    ]:
        with pytest.raises(PolicyError) as refused:
            SlaPolicy.with_overrides(overrides)
        assert str(refused.value) == reason


# -- the order's history --------------------------------------------------------------------

ITEMS = [OrderLine(1, "SKU-1", 2, Decimal("19.90")), OrderLine(2, "SKU-2", 1, Decimal("5.00"))]


def order_in(state: OrderState, channel: str = "web", total: str = "19.90") -> Order:
    return Order(oid(9), channel, "W-9", state, [OrderLine(1, "SKU-1", 1, Decimal(total))], "CNY")


def test_pinning_and_reserving_keep_each_lines_number_sku_qty_and_price() -> None:
    paid = Order(oid(9), "web", "W-9", S.PAID, list(ITEMS), "CNY")
    paid.assign_warehouses({2: "WH-BJ"})
    assert paid.lines == [ITEMS[0], OrderLine(2, "SKU-2", 1, Decimal("5.00"), "WH-BJ")]
    paid.reserve({1: "WH-SH"}, NOW)
    assert paid.lines == [OrderLine(1, "SKU-1", 2, Decimal("19.90"), "WH-SH"), ITEMS[1]]


def test_steps_out_of_place_name_the_orders_state() -> None:
    with pytest.raises(IllegalTransition) as refused:
        order_in(S.RESERVED).assign_warehouses({})
    assert (refused.value.from_state, refused.value.to_state) == (S.RESERVED, S.RESERVED)
    with pytest.raises(IllegalTransition) as refused:
        order_in(S.PAID).take_channel_lines([])
    assert (refused.value.from_state, refused.value.to_state) == (S.PAID, S.PAID)


def test_degraded_checks_lost_routes_and_exceptions_record_their_time_and_actor() -> None:
    checking = order_in(S.CREDIT_CHECK)
    checking.credit_check_degraded("timeout", NOW)
    assert checking.pending[-1] == Transition(
        S.CREDIT_CHECK, S.PAID, NOW, SYSTEM, "credit check degraded (timeout): treated as OK"
    )
    lost = order_in(S.PAID)
    lost.routing_impossible("no warehouse", NOW)
    assert lost.pending[-1] == Transition(
        S.PAID, S.EXCEPTION, NOW, SYSTEM, "routing_impossible (no warehouse)"
    )
    held = order_in(S.CONFIRMED)
    held.raise_exception("manual_review (call the buyer)", NOW, actor="alice")
    assert held.pending[-1] == Transition(
        S.CONFIRMED, S.EXCEPTION, NOW, "alice", "manual_review (call the buyer)"
    )


# -- routing --------------------------------------------------------------------------------

EAST = routing.Warehouse("WH-E", "XX-E", 30.0, 120.0, frozenset({"cold_chain", "hazmat"}))
WEST = routing.Warehouse("WH-W", "XX-W", 30.0, 110.0, frozenset(), {"XX-E": Decimal("7")})
WEST2 = routing.Warehouse("WH-W2", "XX-W", 32.0, 112.0)


def test_a_degree_of_longitude_on_the_equator_is_111_2_km() -> None:
    assert routing.haversine_km((0.0, 0.0), (0.0, 1.0)) == pytest.approx(111.195, abs=0.001)


def test_a_stock_view_of_some_skus() -> None:
    view = routing.StockView({("A", "WH-E"): 1, ("B", "WH-E"): 2, ("A", "WH-W"): 3})
    assert view.only({"A"}) == routing.StockView({("A", "WH-E"): 1, ("A", "WH-W"): 3})


def routed(
    lines: list[routing.RouteLine],
    stock: dict[tuple[str, str], int],
    *,
    region: str = "XX-E",
    warehouses: tuple[routing.Warehouse, ...] = (EAST, WEST),
    **options: Any,
) -> routing.RoutingDecision:
    """``route`` to XX-E from WH-E and WH-W unless told otherwise, no requirements."""
    requirements = options.pop("requirements", ())
    return routing.route(
        lines,
        region=region,
        requirements=requirements,
        warehouses=list(warehouses),
        stock=routing.StockView(stock),
        **options,
    )


def one(sku: str = "A", qty: int = 1, line_no: int = 1) -> routing.RouteLine:
    return routing.RouteLine(line_no, sku, qty)


def test_every_missing_capability_and_every_short_sku_is_named() -> None:
    none_can = routed(
        [one()],
        {("A", "WH-W"): 5},
        warehouses=(WEST,),
        requirements=["hazmat", "cold_chain"],
        capability_requirements={"cold_chain", "hazmat"},
    )
    assert none_can.reason == "no warehouse has the capability cold_chain, hazmat"
    too_few = routed(
        [one("A", 5)],
        {("A", "WH-E"): 1},
        warehouses=(EAST,),
        requirements=["hazmat", "cold_chain"],
        capability_requirements={"cold_chain", "hazmat"},
    )
    assert (too_few.outcome, too_few.reason) == (
        "impossible",
        "cold_chain, hazmat: not enough stock for A in the eligible warehouses",
    )
    short = routed(
        [one("A", 5), one("B", 5, 2)],
        {("A", "WH-E"): 1, ("B", "WH-W"): 1},
        requirements=["gift_wrap"],
    )
    assert (short.outcome, short.reason, short.requirements) == (
        "deferred",
        "not enough stock for A, B in the eligible warehouses",
        ("gift_wrap",),
    )


def test_three_lines_of_one_sku_need_their_sum_from_one_warehouse() -> None:
    three = [one(line_no=n) for n in (1, 2, 3)]
    decision = routed(three, {("A", "WH-E"): 2, ("A", "WH-W"): 3})
    assert decision.warehouse_of() == {1: "WH-W", 2: "WH-W", 3: "WH-W"}


def test_a_whole_order_routes_without_splits_and_a_split_keeps_its_parts() -> None:
    whole = routed([one()], {("A", "WH-E"): 1, ("A", "WH-W"): 1}, allow_split=False)
    assert (whole.outcome, whole.warehouse_of()) == ("routed", {1: "WH-E"})
    split = routed(
        [one("A"), one("B", line_no=2)],
        {("A", "WH-E"): 1, ("B", "WH-W"): 1},
        requirements=["gift_wrap"],
    )
    assert split.requirements == ("gift_wrap",)
    (east, west) = split.shipments
    assert east == routing.Shipment("WH-E", (1,), east.score, 0.0, None)
    assert west == routing.Shipment("WH-W", (2,), west.score, west.distance_km, Decimal("7"))
    assert west.distance_km is not None and west.distance_km > 900


def test_scores_scale_distance_and_cost_between_the_best_and_the_worst() -> None:
    # No centre for XX-W: the destination is the mean position of its two warehouses.
    everywhere = {("A", "WH-E"): 1, ("A", "WH-W"): 1, ("A", "WH-W2"): 1}
    west = routed([one()], everywhere, region="XX-W", warehouses=(EAST, WEST, WEST2), centres={})
    # Stock fits everywhere (0.5 each); distance (0.3) is scaled from the nearest (WH-W2)
    # to the farthest (WH-E); no warehouse has a cost to XX-W, so cost adds nothing.
    assert [(c.warehouse, c.score, c.distance_km) for c in west.candidates] == [
        ("WH-W2", 0.8, 146.1),
        ("WH-W", 0.7997, 146.8),
        ("WH-E", 0.5, 869.2),
    ]
    centred = routed([one()], everywhere, region="XX-W", centres={"XX-W": (30.0, 120.0)})
    assert {c.warehouse: c.distance_km for c in centred.candidates}["WH-E"] == 0.0  # its centre
    nowhere = routed([one()], everywhere, warehouses=(WEST, WEST2), centres={})
    # No distance is known (no centre, no warehouse in XX-E): none counts. One known cost
    # is the best one; an unknown cost counts as the worst.
    assert {c.warehouse: c.score for c in nowhere.candidates} == {"WH-W": 0.7, "WH-W2": 0.5}


# -- workflow rules -------------------------------------------------------------------------

HOLD_BIG = {
    "name": "hold_big",
    "state": "reserved",
    "condition": "total > 100",
    "action": "hold",
    "reason": "manual_review (order of {total} for {customer_tags})",
}
CONFIRM = {
    "name": "confirm",
    "state": "reserved",
    "condition": "true",
    "action": "advance",
    "target": "confirmed",
}
ROUTE_IF_CONFIRMED = {
    "name": "route_confirmed",
    "state": "confirmed",
    "condition": "state == 'confirmed'",
    "action": "advance",
    "target": "routed",
}


def test_a_hold_records_its_rule_time_and_reason_and_an_approval_lets_the_order_on() -> None:
    rules = parse_rules([HOLD_BIG, CONFIRM])
    big = order_in(S.RESERVED, total="150")
    facts = order_facts(big, customer_tags=["vip", "b2b"])
    steps = advance(big, rules, facts, NOW)
    reason = "manual_review (order of 150.0 for b2b, vip)"
    assert [(s.rule, s.action, s.reason) for s in steps] == [("hold_big", "hold", reason)]
    assert big.pending[-1] == Transition(S.RESERVED, S.EXCEPTION, NOW, "rule:hold_big", reason)
    assert big.exception_reason == reason
    approved = order_in(S.RESERVED, total="150")
    steps = advance(approved, rules, facts, NOW, approved=["hold_big"])
    assert [(s.rule, s.action) for s in steps] == [("confirm", "advance")]
    assert approved.pending[-1] == Transition(
        S.RESERVED, S.CONFIRMED, NOW, "rule:confirm", "paid and reserved"
    )


def test_each_step_sees_the_state_the_order_is_in_now() -> None:
    o = order_in(S.RESERVED)
    rules = parse_rules([CONFIRM, ROUTE_IF_CONFIRMED])
    steps = advance(o, rules, order_facts(o), NOW)
    assert [s.rule for s in steps] == ["confirm", "route_confirmed"] and o.state is S.ROUTED


def test_the_caller_not_the_rules_moves_a_paid_order() -> None:
    reserve = {**CONFIRM, "name": "r", "state": "paid", "target": "reserved"}
    paid = order_in(S.PAID)
    assert advance(paid, parse_rules([reserve]), order_facts(paid), NOW) == []
    assert paid.state is S.PAID


def test_a_condition_the_facts_cannot_answer_does_not_hold() -> None:
    odd = {**HOLD_BIG, "condition": "customer_tags[5] == 'vip'"}  # there is no sixth tag
    o = order_in(S.RESERVED, total="150")
    assert next_step(parse_rules([odd]), S.RESERVED, order_facts(o)) is None


def test_a_reason_keeps_unknown_placeholders_and_writes_lists_and_numbers() -> None:
    facts = {"customer_tags": ["b2b", "vip"], "total": 12.5}
    text = render_reason("{customer_tags} / {total} / {nope}", facts, {})
    assert text == "b2b, vip / 12.5 / {nope}"
