"""The workflow rules as pure data: parsing, holds, advances (plain objects, no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from order_svc.domain.exceptions import classify
from order_svc.domain.order import IllegalTransition, Line, Order, OrderState
from order_svc.domain.workflow import (
    DEFAULT_RULE_SET,
    DEFAULT_RULES,
    RuleSetError,
    WorkflowRule,
    advance,
    next_step,
    order_facts,
    parse_rules,
)

S = OrderState
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
LIMIT = Decimal("10000")


def order(unit_price: str = "19.90", qty: int = 2, state: OrderState = S.PAID) -> Order:
    o = Order(
        uuid.uuid4(), "web", "W-1", state, [Line(1, "SKU-1", qty, Decimal(unit_price))], "CNY"
    )
    return o


def paid_step(o: Order, tags: list[str] | None = None, approved: tuple[str, ...] = ()) -> Any:
    facts = order_facts(o, customer_tags=tags or [], credit_ok=True, hold_amount_over=LIMIT)
    shown = {"total": str(o.total), "hold_amount_over": str(LIMIT)}
    return next_step(DEFAULT_RULE_SET, S.PAID, facts, approved=approved, shown=shown)


AMOUNT = ("hold_amount", "manual_review (amount 12000.00 over 10000)")
FLAGGED = ("hold_flagged_customer", "manual_review (flagged customer)")
RESERVE = ("reserve_when_credit_ok", "stock reserved")


@pytest.mark.parametrize(
    ("unit_price", "qty", "tags", "approved", "expected"),
    [
        # amount hold: strictly above the limit
        ("6000.00", 2, [], (), AMOUNT),
        ("5000.00", 2, [], (), RESERVE),
        # flagged customer
        ("19.90", 2, ["flagged"], (), FLAGGED),
        ("19.90", 2, ["vip", "frequent"], (), RESERVE),
        # both: the amount rule comes first; once approved, the flag still holds it
        ("6000.00", 2, ["flagged"], (), AMOUNT),
        ("6000.00", 2, ["flagged"], ("hold_amount",), FLAGGED),
        ("6000.00", 2, ["flagged"], ("hold_amount", "hold_flagged_customer"), RESERVE),
        # no hold
        ("19.90", 2, [], (), RESERVE),
    ],
)
def test_hold_rules_of_a_paid_order(
    unit_price: str,
    qty: int,
    tags: list[str],
    approved: tuple[str, ...],
    expected: tuple[str, str],
) -> None:
    step = paid_step(order(unit_price, qty), tags, approved)
    assert step is not None
    assert (step.rule, step.reason) == expected
    assert step.actor == f"rule:{expected[0]}"


def test_a_hold_reason_opens_a_manual_review_exception() -> None:
    step = paid_step(order("6000.00", 2))
    assert step.action == "hold" and step.target is S.EXCEPTION
    assert classify(step.reason) == ("manual_review", "amount 12000.00 over 10000")


def test_the_default_chain_after_the_stock_is_held_rests_in_routed() -> None:
    o = order(state=S.RESERVED)
    facts = order_facts(o, credit_ok=True, routed=True)
    steps = advance(o, DEFAULT_RULE_SET, {**facts, "warehouses": ["WH-SH"]}, NOW)
    assert [(s.rule, s.target) for s in steps] == [
        ("confirm_reserved", S.CONFIRMED),
        ("route_confirmed", S.ROUTED),
    ]
    assert o.state is S.ROUTED
    assert [(t.to_state, t.actor, t.reason) for t in o.pending] == [
        (S.CONFIRMED, "rule:confirm_reserved", "paid and reserved"),
        (S.ROUTED, "rule:route_confirmed", "routed: WH-SH"),
    ]


def test_without_a_routing_decision_the_order_stays_confirmed() -> None:
    o = order(state=S.RESERVED)
    steps = advance(o, DEFAULT_RULE_SET, order_facts(o, routed=False), NOW)
    assert [s.rule for s in steps] == ["confirm_reserved"]
    assert o.state is S.CONFIRMED


def test_a_disabled_rule_does_nothing_and_enabling_it_releases_to_picking() -> None:
    [release] = [r for r in DEFAULT_RULE_SET if r.name == "release_to_picking"]
    assert release.enabled is False
    o = order(state=S.ROUTED)
    assert advance(o, DEFAULT_RULE_SET, order_facts(o, routed=True), NOW) == []
    assert o.state is S.ROUTED and o.pending == []

    raw = [
        {**r, "enabled": True} if r["name"] == "release_to_picking" else r for r in DEFAULT_RULES
    ]
    steps = advance(o, parse_rules(raw), order_facts(o, routed=True), NOW)
    assert [(s.rule, s.target) for s in steps] == [("release_to_picking", S.PICKING)]
    assert o.pending[-1].actor == "rule:release_to_picking"


def test_a_disabled_hold_rule_holds_nothing() -> None:
    raw = [{**r, "enabled": False} if r["name"] == "hold_amount" else r for r in DEFAULT_RULES]
    o = order("6000.00", 2)
    facts = order_facts(o, credit_ok=True, hold_amount_over=LIMIT)
    step = next_step(parse_rules(raw), S.PAID, facts)
    assert step is not None and step.rule == "reserve_when_credit_ok"


def test_no_matching_rule_leaves_the_order_where_it_is() -> None:
    o = order()
    facts = order_facts(o, credit_ok=False, hold_amount_over=LIMIT)
    assert next_step(DEFAULT_RULE_SET, S.PAID, facts) is None


def test_a_hold_after_the_stock_is_held_stops_the_chain_in_exception() -> None:
    rules = parse_rules(
        [
            {
                "name": "big_live_orders",
                "state": "confirmed",
                "condition": "channel == 'live' and total > 100",
                "action": "hold",
                "reason": "manual_review (live order of {total})",
            },
            *DEFAULT_RULES,
        ]
    )
    o = Order(uuid.uuid4(), "live", "L-1", S.RESERVED, [Line(1, "A", 1, Decimal("150"))], "CNY")
    facts = order_facts(o, routed=True)
    steps = advance(o, rules, facts, NOW, shown={"total": "150.00"})
    assert [s.rule for s in steps] == ["confirm_reserved", "big_live_orders"]
    assert o.state is S.EXCEPTION and o.exception_reason == "manual_review (live order of 150.00)"


def test_the_shipped_rules_are_valid_and_round_trip() -> None:
    assert parse_rules([r.as_data() for r in DEFAULT_RULE_SET]) == list(DEFAULT_RULE_SET)


@pytest.mark.parametrize(
    ("condition", "message", "position"),
    [
        ("total > ", "syntax error", 8),
        ("total > 1 and (credit_ok", "syntax error", 24),
        ("totl > 10000", "unknown fact 'totl'", 0),
        ("credit_ok and colour == 'red'", "unknown fact 'colour'", 14),
    ],
)
def test_a_bad_condition_is_refused_with_its_position(
    condition: str, message: str, position: int
) -> None:
    raw: list[dict[str, Any]] = [*DEFAULT_RULES[:2], {**DEFAULT_RULES[2], "condition": condition}]
    with pytest.raises(RuleSetError) as caught:
        parse_rules(raw)
    assert (caught.value.index, caught.value.field) == (2, "condition")
    assert caught.value.message.startswith(message)
    assert caught.value.position == position


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target": "shipped"}, "target"),  # paid -> shipped: not an automatic step
        ({"target": "nowhere"}, "target"),
        ({"state": "delivered"}, "state"),
        ({"action": "explode"}, "action"),
        ({"name": ""}, "name"),
        ({"action": "hold", "reason": None}, "reason"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_a_rule_that_does_not_fit_the_state_machine_is_refused(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(RuleSetError) as caught:
        parse_rules([{**DEFAULT_RULES[2], **change}])
    assert (caught.value.index, caught.value.field) == (0, field)


def test_rule_names_are_unique() -> None:
    with pytest.raises(RuleSetError) as caught:
        parse_rules([DEFAULT_RULES[0], DEFAULT_RULES[0]])
    assert (caught.value.index, caught.value.field) == (1, "name")


def test_an_advance_the_state_machine_refuses_is_never_half_applied() -> None:
    # A rule set cannot name such a step, but the aggregate guards it anyway.
    rule = WorkflowRule("odd", S.RESERVED, "true", "advance", S.PICKING)
    o = order(state=S.RESERVED)
    with pytest.raises(IllegalTransition):
        advance(o, [rule], order_facts(o), NOW)
    assert o.state is S.RESERVED and o.pending == []
