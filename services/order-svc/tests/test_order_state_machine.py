"""The order state machine, with plain objects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from order_svc.domain.order import TRANSITIONS, IllegalTransition, Line, Order, OrderState

NOW = datetime(2026, 11, 11, tzinfo=UTC)
S = OrderState


def new_order() -> Order:
    return Order.receive(
        id=uuid.uuid4(),
        channel="web",
        channel_order_id="T-1",
        lines=[Line(1, "SKU-1", 2, Decimal("19.90")), Line(2, "SKU-2", 1, Decimal("5.00"))],
        currency="CNY",
        priority="normal",
        at=NOW,
    )


def test_a_paid_order_is_reserved_then_confirmed_with_every_step_recorded() -> None:
    order = new_order()
    order.mark_paid(NOW)
    order.reserve({1: "WH-SH", 2: "WH-BJ"}, NOW)
    order.confirm(NOW)
    assert order.state is S.CONFIRMED
    assert [(t.from_state, t.to_state) for t in order.pending] == [
        (None, S.RECEIVED),
        (S.RECEIVED, S.PAID),
        (S.PAID, S.RESERVED),
        (S.RESERVED, S.CONFIRMED),
    ]
    assert [ln.warehouse for ln in order.lines] == ["WH-SH", "WH-BJ"]
    assert order.total == Decimal("44.80")


def test_an_unpaid_order_waits_for_payment() -> None:
    order = new_order()
    order.await_payment(NOW)
    assert order.state is S.PENDING_PAYMENT
    with pytest.raises(IllegalTransition):
        order.confirm(NOW)


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], S.CONFIRMED),  # received -> confirmed skips payment and stock
        ([S.PAID], S.SHIPPED),
        ([S.PAID, S.RESERVED, S.CONFIRMED, S.PICKING, S.SHIPPED], S.CANCELLED),
        ([S.CANCELLED], S.PAID),
        ([S.PAID, S.REFUNDED], S.RESERVED),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    path: list[OrderState], illegal: OrderState
) -> None:
    order = new_order()
    for state in path:
        order.move_to(state, at=NOW)
    before = (order.state, len(order.pending))
    with pytest.raises(IllegalTransition):
        order.move_to(illegal, at=NOW)
    assert (order.state, len(order.pending)) == before


def test_a_stock_rejection_parks_the_order_with_its_reason() -> None:
    order = new_order()
    order.mark_paid(NOW)
    order.raise_exception("stock_rejected (SKU-1: insufficient)", NOW)
    assert order.state is S.EXCEPTION
    assert order.exception_reason == "stock_rejected (SKU-1: insufficient)"
    assert order.pending[-1].reason == order.exception_reason


def test_every_state_has_an_entry_and_terminal_states_stay_terminal() -> None:
    assert set(TRANSITIONS) == set(OrderState)
    assert TRANSITIONS[S.REFUNDED] == frozenset()


def test_a_paid_order_waits_in_credit_check_and_goes_back_to_paid_when_approved() -> None:
    order = new_order()
    order.mark_paid(NOW)
    order.start_credit_check(NOW)
    assert order.state is S.CREDIT_CHECK
    with pytest.raises(IllegalTransition):
        order.move_to(S.CONFIRMED, at=NOW)
    order.credit_approved(NOW)
    assert (order.state, order.credit_degraded) == (S.PAID, False)


def test_a_degraded_credit_check_goes_on_as_credit_ok_and_flags_the_order() -> None:
    order = new_order()
    order.mark_paid(NOW)
    order.start_credit_check(NOW)
    order.credit_check_degraded("timeout", NOW)
    assert (order.state, order.credit_degraded) == (S.PAID, True)
    assert order.pending[-1].reason == "credit check degraded (timeout): treated as OK"


def test_a_refused_credit_parks_the_order_with_the_cause() -> None:
    order = new_order()
    order.mark_paid(NOW)
    order.start_credit_check(NOW)
    order.credit_refused("limit exceeded", NOW)
    assert order.state is S.EXCEPTION
    assert order.exception_reason == "credit_refused (limit exceeded)"


def test_operator_actions_record_the_operator_and_repeat_as_no_ops() -> None:
    order = new_order()
    order.mark_paid(NOW)
    assert order.cancel("customer asked", "alice", NOW) is True
    assert order.cancel("customer asked", "alice", NOW) is False
    assert (order.state, order.pending[-1].actor) == (S.CANCELLED, "alice")
    assert order.refund("goodwill", "bob", NOW) is True
    assert order.refund("goodwill", "bob", NOW) is False
    assert order.pending[-1].actor == "bob"


def test_a_shipped_order_can_no_longer_be_cancelled() -> None:
    order = new_order()
    for state in (S.PAID, S.RESERVED, S.CONFIRMED):
        order.move_to(state, at=NOW)
    order.start_picking("alice", NOW)
    order.ship("SF", "SF1", "alice", NOW)
    with pytest.raises(IllegalTransition):
        order.cancel("too late", "alice", NOW)
    assert order.deliver("alice", NOW) is True
    assert order.state is S.DELIVERED
