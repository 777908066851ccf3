"""The order aggregate's history, as plain objects: every business step records exactly
its transition (from, to, time, actor, reason), the idempotent steps say whether they
moved, and the steps that pin warehouses or take the channel's lines guard their states.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from order_svc.domain.order import (
    SYSTEM,
    IllegalTransition,
    Line,
    Order,
    OrderState,
    Transition,
)
from order_svc.domain.workflow import order_facts

S = OrderState
T0 = datetime(2026, 11, 11, tzinfo=UTC)
LINES = [Line(1, "SKU-1", 2, Decimal("19.90")), Line(2, "SKU-2", 1, Decimal("5.00"))]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def received(platform_user_id: str | None = "u-1") -> Order:
    return Order.receive(
        id=uuid.UUID(int=1),
        channel="web",
        channel_order_id="W-1",
        lines=list(LINES),
        currency="CNY",
        priority="urgent",
        at=T0,
        platform_user_id=platform_user_id,
    )


def test_a_received_order_and_its_first_record() -> None:
    order = received()
    assert (order.id, order.channel, order.channel_order_id) == (uuid.UUID(int=1), "web", "W-1")
    assert (order.state, order.currency, order.priority) == (S.RECEIVED, "CNY", "urgent")
    assert (order.platform_user_id, order.customer_id, order.credit_degraded) == (
        "u-1",
        None,
        False,
    )
    assert order.lines == LINES and order.total == Decimal("44.80")
    assert order.pending == [Transition(None, S.RECEIVED, T0, SYSTEM, "received from channel")]
    assert received(None).platform_user_id is None


def test_the_happy_path_records_each_step_with_its_reason() -> None:
    order = received()
    order.await_payment(at(1))
    order.mark_paid(at(2))
    order.start_credit_check(at(3))
    order.credit_approved(at(4))
    order.reserve({1: "WH-SH"}, at(5))
    order.confirm(at(6))
    order.route("WH-SH by distance", at(7))
    assert order.start_picking("alice", at(8)) is True
    assert order.ship("SF", "SF123", "bob", at(9)) is True
    assert order.deliver("carol", at(10)) is True
    assert order.refund("damaged", "dave", at(11)) is True
    assert [(t.from_state, t.to_state, t.at, t.actor, t.reason) for t in order.pending[1:]] == [
        (S.RECEIVED, S.PENDING_PAYMENT, at(1), SYSTEM, "not paid yet"),
        (S.PENDING_PAYMENT, S.PAID, at(2), SYSTEM, "payment received"),
        (S.PAID, S.CREDIT_CHECK, at(3), SYSTEM, "credit check requested"),
        (S.CREDIT_CHECK, S.PAID, at(4), SYSTEM, "credit approved"),
        (S.PAID, S.RESERVED, at(5), SYSTEM, "stock reserved"),
        (S.RESERVED, S.CONFIRMED, at(6), SYSTEM, "paid and reserved"),
        (S.CONFIRMED, S.ROUTED, at(7), SYSTEM, "routed: WH-SH by distance"),
        (S.ROUTED, S.PICKING, at(8), "alice", "handed to the warehouse"),
        (S.PICKING, S.SHIPPED, at(9), "bob", "SF SF123"),
        (S.SHIPPED, S.DELIVERED, at(10), "carol", "delivered"),
        (S.DELIVERED, S.REFUNDED, at(11), "dave", "damaged"),
    ]
    assert [ln.warehouse for ln in order.lines] == ["WH-SH", None]
    assert order.state is S.REFUNDED


def test_the_idempotent_steps_say_false_and_record_nothing_the_second_time() -> None:
    order = received()
    order.mark_paid(at(1))
    order.reserve({}, at(2), actor="op", reason="manual")
    assert order.pending[-1] == Transition(S.PAID, S.RESERVED, at(2), "op", "manual")
    order.confirm(at(3))
    assert order.start_picking("a", at(4)) and not order.start_picking("a", at(5))
    assert order.ship("SF", "1", "a", at(6)) and not order.ship("SF", "1", "a", at(7))
    assert order.deliver("a", at(8)) and not order.deliver("a", at(9))
    assert order.refund("r", "a", at(10)) and not order.refund("r", "a", at(11))
    assert len(order.pending) == 8
    cancelled = received()
    assert cancelled.cancel("changed mind", "bob", at(1)) is True
    assert cancelled.cancel("again", "bob", at(2)) is False
    assert cancelled.pending[-1] == Transition(
        S.RECEIVED, S.CANCELLED, at(1), "bob", "changed mind"
    )


def test_degraded_and_refused_credit_checks() -> None:
    order = received()
    order.mark_paid(at(1))
    order.start_credit_check(at(2))
    order.credit_check_degraded("timeout", at(3))
    assert order.credit_degraded is True and order.state is S.PAID
    assert order.pending[-1].reason == "credit check degraded (timeout): treated as OK"
    refused = received()
    refused.mark_paid(at(1))
    refused.start_credit_check(at(2))
    refused.credit_refused("over limit", at(3))
    assert refused.state is S.EXCEPTION
    assert refused.exception_reason == "credit_refused (over limit)"
    assert refused.pending[-1] == Transition(
        S.CREDIT_CHECK, S.EXCEPTION, at(3), SYSTEM, "credit_refused (over limit)"
    )
    lost = received()
    lost.mark_paid(at(1))
    lost.routing_impossible("no warehouse", at(2))
    assert lost.exception_reason == "routing_impossible (no warehouse)"
    assert lost.state is S.EXCEPTION


def test_an_illegal_move_says_both_states_and_changes_nothing() -> None:
    order = received()
    with pytest.raises(IllegalTransition) as refused:
        order.ship("SF", "1", "a", at(1))
    assert str(refused.value) == "an order cannot go from received to shipped"
    assert (refused.value.from_state, refused.value.to_state) == (S.RECEIVED, S.SHIPPED)
    assert order.state is S.RECEIVED and len(order.pending) == 1


def test_warehouses_are_pinned_only_before_stock_is_held_and_lines_taken_only_before_payment() -> (
    None
):
    order = received()
    new_lines = [Line(1, "SKU-9", 4, Decimal("1.00"))]
    order.take_channel_lines(new_lines)
    assert order.lines == new_lines
    order.await_payment(at(1))
    order.take_channel_lines(LINES)
    assert order.lines == LINES
    with pytest.raises(IllegalTransition):
        order.assign_warehouses({1: "WH-SH"})
    order.mark_paid(at(2))
    with pytest.raises(IllegalTransition):
        order.take_channel_lines(new_lines)
    order.assign_warehouses({2: "WH-BJ"})
    assert [ln.warehouse for ln in order.lines] == [None, "WH-BJ"]
    order.start_credit_check(at(3))
    order.assign_warehouses({1: "WH-SH"})
    assert [ln.warehouse for ln in order.lines] == ["WH-SH", None]
    order.credit_approved(at(4))
    order.reserve({1: "WH-SH"}, at(5))
    with pytest.raises(IllegalTransition):
        order.assign_warehouses({})


def test_the_facts_workflow_conditions_see() -> None:
    order = received()
    order.mark_paid(at(1))
    order.assign_warehouses({1: "WH-SH", 2: "WH-SH"})
    assert order_facts(order) == {
        "state": "paid",
        "total": 44.8,
        "currency": "CNY",
        "channel": "web",
        "priority": "urgent",
        "line_count": 2.0,
        "item_count": 3.0,
        "customer_tags": [],
        "delivery_requirements": [],
        "warehouses": ["WH-SH"],
        "credit_ok": False,
        "credit_degraded": False,
        "routed": False,
        "hold_amount_over": 10000.0,
    }
    told = order_facts(
        order,
        customer_tags=["vip", "vip", "b2b"],
        delivery_requirements=["fragile", "cold_chain", "fragile"],
        credit_ok=True,
        routed=True,
        hold_amount_over=Decimal("500.50"),
    )
    assert (told["customer_tags"], told["delivery_requirements"]) == (
        ["b2b", "vip"],
        ["cold_chain", "fragile"],
    )
    assert (told["credit_ok"], told["routed"], told["hold_amount_over"]) == (True, True, 500.5)
