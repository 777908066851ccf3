"""The comparison of order states with inventory's reservations, on plain objects: one
case per kind of disagreement, what is not one (in flight, exceptions, agreeing lines),
and the grace period."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from order_svc.domain.consistency import (
    HeldStock,
    Kind,
    Line,
    OrderSnapshot,
    compare,
    line_differences,
)

NOW = datetime(2024, 11, 11, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=30)
SETTLED = NOW - timedelta(minutes=5)
LINES = (Line(1, "TEA", 2, "WH-SH"), Line(2, "CUP", 1, "WH-BJ"))
ORDERED_1 = "line 1: ordered 2 x TEA at WH-SH"


def order(
    state: str, lines: tuple[Line, ...] = LINES, changed_at: datetime = SETTLED
) -> OrderSnapshot:
    return OrderSnapshot(uuid.uuid4(), state, lines, changed_at)


def held(
    of: OrderSnapshot | uuid.UUID, lines: tuple[Line, ...] = LINES, changed_at: datetime = SETTLED
) -> HeldStock:
    order_id = of.order_id if isinstance(of, OrderSnapshot) else of
    return HeldStock(order_id, lines, changed_at)


def check(
    orders: list[OrderSnapshot], stock: list[HeldStock]
) -> list[tuple[uuid.UUID, str | None, Kind]]:
    return [(d.order_id, d.state, d.kind) for d in compare(orders, stock, now=NOW, grace=GRACE)]


@pytest.mark.parametrize("state", ["reserved", "confirmed", "routed", "picking", "exception"])
def test_an_order_holding_exactly_its_lines_agrees(state: str) -> None:
    o = order(state)
    assert check([o], [held(o)]) == []


def test_an_unpinned_line_agrees_with_any_warehouse() -> None:
    o = order("confirmed", (Line(1, "TEA", 2),))
    assert check([o], [held(o, (Line(1, "TEA", 2, "WH-BJ"),))]) == []


@pytest.mark.parametrize("state", ["cancelled", "delivered", "refunded", "shipped"])
def test_stock_held_for_a_closed_order(state: str) -> None:
    o = order(state)
    [d] = compare([o], [held(o)], now=NOW, grace=GRACE)
    assert (d.order_id, d.state, d.kind) == (o.order_id, state, Kind.STOCK_HELD_FOR_CLOSED_ORDER)
    assert "2 x TEA at WH-SH" in d.detail


@pytest.mark.parametrize("state", ["cancelled", "delivered", "refunded", "shipped"])
def test_a_closed_order_holding_nothing_agrees(state: str) -> None:
    assert check([order(state)], []) == []


@pytest.mark.parametrize("state", ["reserved", "confirmed", "routed", "picking"])
def test_an_order_that_must_hold_stock_without_a_reservation(state: str) -> None:
    o = order(state)
    [d] = compare([o], [], now=NOW, grace=GRACE)
    assert (d.order_id, d.state, d.kind) == (o.order_id, state, Kind.NO_RESERVATION)


@pytest.mark.parametrize(
    ("reserved", "expected"),
    [
        ((Line(1, "TEA", 1, "WH-SH"), LINES[1]), f"{ORDERED_1}, reserved 1 x TEA at WH-SH"),
        ((Line(1, "MUG", 2, "WH-SH"), LINES[1]), f"{ORDERED_1}, reserved 2 x MUG at WH-SH"),
        ((Line(1, "TEA", 2, "WH-BJ"), LINES[1]), f"{ORDERED_1}, reserved 2 x TEA at WH-BJ"),
        ((LINES[0],), "line 2: ordered 1 x CUP at WH-BJ, nothing reserved"),
        ((*LINES, Line(3, "MUG", 1, "WH-SH")), "line 3: reserved 1 x MUG at WH-SH, not on the order"),  # noqa: E501
    ],
)  # fmt: skip
def test_reserved_lines_that_do_not_match_the_order(
    reserved: tuple[Line, ...], expected: str
) -> None:
    o = order("routed")
    [d] = compare([o], [held(o, reserved)], now=NOW, grace=GRACE)
    assert (d.kind, d.detail) == (Kind.RESERVATION_MISMATCH, expected)


def test_an_open_reservation_for_an_order_order_svc_does_not_know() -> None:
    stranger = uuid.uuid4()
    [d] = compare([], [held(stranger)], now=NOW, grace=GRACE)
    assert (d.order_id, d.state, d.kind) == (stranger, None, Kind.UNKNOWN_ORDER)


def test_an_exception_order_may_hold_nothing_but_what_it_holds_must_match() -> None:
    holding_nothing = order("exception")
    holding_right = order("exception")
    holding_wrong = order("exception")
    found = check(
        [holding_nothing, holding_right, holding_wrong],
        [held(holding_right), held(holding_wrong, (Line(1, "TEA", 5, "WH-SH"), LINES[1]))],
    )
    assert found == [(holding_wrong.order_id, "exception", Kind.RESERVATION_MISMATCH)]


@pytest.mark.parametrize("state", ["received", "pending_payment"])
def test_stock_held_for_an_order_not_paid_yet(state: str) -> None:
    o = order(state)
    assert check([o], [held(o)]) == [(o.order_id, state, Kind.STOCK_HELD_FOR_UNPAID_ORDER)]
    assert check([o], []) == []


@pytest.mark.parametrize("state", ["paid", "credit_check"])
def test_orders_asking_for_their_stock_are_not_checked(state: str) -> None:
    o = order(state)
    assert check([o], [held(o)]) == []
    assert check([o], [held(o, (Line(1, "TEA", 9),))]) == []
    assert check([o], []) == []


def test_changes_younger_than_the_grace_period_are_in_flight() -> None:
    just_cancelled = order("cancelled", changed_at=NOW - timedelta(seconds=5))
    just_confirmed = order("confirmed", changed_at=NOW - timedelta(seconds=29))
    just_reserved = order("cancelled")
    stranger_just_reserved = uuid.uuid4()
    found = check(
        [just_cancelled, just_confirmed, just_reserved],
        [
            held(just_cancelled),
            held(just_reserved, changed_at=NOW - timedelta(seconds=1)),
            held(stranger_just_reserved, changed_at=NOW),
        ],
    )
    assert found == []
    # Once the grace period has passed, each of them is a disagreement.
    later = compare(
        [just_cancelled, just_confirmed, just_reserved],
        [held(just_cancelled), held(just_reserved), held(stranger_just_reserved)],
        now=NOW + GRACE,
        grace=GRACE,
    )
    assert sorted(d.kind for d in later) == sorted(
        [
            Kind.STOCK_HELD_FOR_CLOSED_ORDER,
            Kind.NO_RESERVATION,
            Kind.STOCK_HELD_FOR_CLOSED_ORDER,
            Kind.UNKNOWN_ORDER,
        ]
    )


def test_a_zero_grace_period_checks_everything() -> None:
    o = order("cancelled", changed_at=NOW)
    assert [
        d.kind for d in compare([o], [held(o, changed_at=NOW)], now=NOW, grace=timedelta())
    ] == [Kind.STOCK_HELD_FOR_CLOSED_ORDER]


def test_disagreements_come_sorted_by_order_id() -> None:
    orders = [order("cancelled") for _ in range(10)]
    found = compare(orders, [held(o) for o in orders], now=NOW, grace=GRACE)
    assert [d.order_id for d in found] == sorted(o.order_id for o in orders)


def test_identical_lines_have_no_differences() -> None:
    assert line_differences(LINES, LINES) == []
    assert line_differences([], []) == []
