"""What a channel's later word means for an order, by state (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from order_svc.domain.channel_facts import ChannelWord, Reaction, change_detail, is_stale, react
from order_svc.domain.order import OrderState

S = OrderState
R = Reaction
T0 = datetime(2026, 11, 11, tzinfo=UTC)


def word(
    *,
    paid: bool = False,
    cancelled: bool = False,
    lines: bool = False,
    address: bool = False,
    at: datetime | None = T0,
) -> ChannelWord:
    return ChannelWord(paid, cancelled, lines, address, at)


def test_paid_later_takes_the_paid_path_only_while_payment_is_awaited() -> None:
    assert react(S.PENDING_PAYMENT, word(paid=True)) == [R.PAY]
    assert react(S.RECEIVED, word(paid=True)) == [R.PAY]
    for state in (S.PAID, S.CREDIT_CHECK, S.RESERVED, S.ROUTED, S.SHIPPED, S.EXCEPTION):
        assert react(state, word(paid=True)) == [], state


BEFORE_SHIPMENT = (S.RECEIVED, S.PENDING_PAYMENT, S.PAID, S.CREDIT_CHECK, S.RESERVED)
BEFORE_SHIPMENT += (S.CONFIRMED, S.ROUTED, S.PICKING, S.EXCEPTION)


@pytest.mark.parametrize("state", BEFORE_SHIPMENT)
def test_cancelled_before_shipment_cancels_the_order(state: OrderState) -> None:
    assert react(state, word(paid=True, cancelled=True)) == [R.CANCEL]


@pytest.mark.parametrize("state", [S.SHIPPED, S.DELIVERED])
def test_cancelled_after_shipment_goes_to_a_person_and_releases_nothing(state: OrderState) -> None:
    assert react(state, word(cancelled=True)) == [R.RETURN_FOR_REVIEW]


@pytest.mark.parametrize("state", [S.CANCELLED, S.REFUNDED])
def test_a_final_order_ignores_every_fact(state: OrderState) -> None:
    assert react(state, word(paid=True, cancelled=True, lines=True, address=True)) == []


def test_changed_lines_are_taken_before_anything_is_held_and_reviewed_after() -> None:
    assert react(S.PENDING_PAYMENT, word(lines=True, paid=True)) == [R.TAKE_LINES, R.PAY]
    for state in (S.PAID, S.CREDIT_CHECK, S.RESERVED, S.CONFIRMED, S.ROUTED, S.PICKING):
        assert react(state, word(lines=True)) == [R.CHANGE_FOR_REVIEW], state
    assert react(S.SHIPPED, word(lines=True, address=True)) == [R.CHANGE_FOR_REVIEW]


def test_another_address_is_taken_until_picking_begins() -> None:
    assert react(S.ROUTED, word(address=True)) == [R.TAKE_ADDRESS]
    assert react(S.PENDING_PAYMENT, word(address=True)) == [R.TAKE_ADDRESS]
    assert react(S.PICKING, word(address=True)) == [R.CHANGE_FOR_REVIEW]


def test_an_older_fact_than_the_version_applied_is_stale() -> None:
    assert is_stale(word(at=T0 - timedelta(seconds=1)), T0)
    assert not is_stale(word(at=T0), T0)  # the same version again: applied once by dedupe
    assert not is_stale(word(at=T0 + timedelta(seconds=1)), T0)
    assert not is_stale(word(at=None), T0)  # an untimed channel: arrival order
    assert not is_stale(word(at=T0), None)


def test_the_review_detail_says_what_changed_and_when() -> None:
    detail = change_detail(["lines", "address"], S.ROUTED)
    assert detail == "the channel changed lines and address while the order was routed"
