"""What one transaction's events tell the board, folded on the stored order row, as plain
objects: details filled once, the latest transition wins, SLA warnings by their raise
time, facts as told, exceptions opened and released only by the latest change, stock and
channel entries keeping the latest per key.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from notifier.domain.board_changes import (
    ORDER_COLUMNS,
    BoardChanges,
    ExceptionRaised,
    ExceptionResolved,
    ParkedReleased,
    fold_order,
    is_due,
)

T0 = datetime(2026, 11, 11, 0, 0, 30, 500, tzinfo=UTC)
ORDER = uuid.UUID(int=7)
EMPTY = dict.fromkeys(ORDER_COLUMNS)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def created(changes: BoardChanges, when: datetime = T0) -> None:
    changes.order_created(
        order_id=ORDER,
        channel="web",
        channel_order_id="W-1",
        currency="CNY",
        total=Decimal("19.90"),
        priority="high",
        created_at=when,
    )


def moved(changes: BoardChanges, to: str, seconds: float, **kw: str | None) -> None:
    changes.state_changed(
        order_id=ORDER,
        channel=kw.get("channel") or "web",
        from_state=kw.get("from_state"),
        to_state=to,
        reason=kw.get("reason"),
        changed_at=at(seconds),
        cause=kw.get("cause"),
    )


def test_an_empty_change_set_is_false_and_any_entry_makes_it_true() -> None:
    assert not BoardChanges()
    for fill in (
        lambda c: created(c),
        lambda c: c.stock_low(sku="S", warehouse=None, available=1, safety_stock=2, raised_at=T0),
        lambda c: c.stock_level(sku="S", warehouse="W", available=1, changed_at=T0),
        lambda c: c.channel_sales(sku="S", channel="web", paused=True, reason="r", changed_at=T0),
    ):
        changes = BoardChanges()
        fill(changes)
        assert changes


def test_created_fills_the_details_once_and_counts_its_minute_once() -> None:
    changes = BoardChanges()
    created(changes)
    created(changes, at(120))  # announced again: nothing changes
    fold = fold_order(EMPTY, changes.orders[ORDER])
    assert fold.changed is True
    assert {k: fold.row[k] for k in ("channel", "channel_order_id", "currency")} == {
        "channel": "web",
        "channel_order_id": "W-1",
        "currency": "CNY",
    }
    assert (fold.row["state"], fold.row["total"], fold.row["priority"]) == (
        "received",
        Decimal("19.90"),
        "high",
    )
    assert fold.row["created_at"] == T0
    assert fold.created_minutes == [datetime(2026, 11, 11, 0, 0, tzinfo=UTC)]


def test_created_after_a_transition_keeps_the_later_state() -> None:
    changes = BoardChanges()
    moved(changes, "paid", 5, from_state="received")
    created(changes)
    fold = fold_order(EMPTY, changes.orders[ORDER])
    assert (fold.row["state"], fold.row["state_changed_at"]) == ("paid", at(5))
    assert fold.row["channel_order_id"] == "W-1"


def test_a_stored_order_is_not_created_again_and_an_unchanged_fold_says_so() -> None:
    stored = {**EMPTY, "created_at": T0, "state": "paid", "channel": "app"}
    changes = BoardChanges()
    created(changes, at(1))
    fold = fold_order(stored, changes.orders[ORDER])
    assert fold.changed is False and fold.created_minutes == []
    assert fold.row == stored
    assert fold_order({**stored, "extra": 1}, []).row == stored


def test_the_latest_transition_wins_and_each_is_marked_whether_it_was_latest() -> None:
    changes = BoardChanges()
    moved(changes, "paid", 10, reason="paid")
    moved(changes, "received", 5)  # older: ignored
    moved(changes, "reserved", 10, reason="same time")  # same time: applies
    first, older, same = changes.orders[ORDER]
    fold = fold_order(EMPTY, changes.orders[ORDER])
    assert (fold.row["state"], fold.row["state_changed_at"], fold.row["state_reason"]) == (
        "reserved",
        at(10),
        "same time",
    )
    assert [op.latest for op in (first, older, same)] == [True, False, True]  # type: ignore[union-attr]
    assert fold.row["channel"] == "web"


def test_the_first_channel_known_stays() -> None:
    changes = BoardChanges()
    moved(changes, "paid", 1, channel="app")
    moved(changes, "reserved", 2, channel="web")
    assert fold_order(EMPTY, changes.orders[ORDER]).row["channel"] == "app"
    stored = {**EMPTY, "channel": "live"}
    assert fold_order(stored, changes.orders[ORDER]).row["channel"] == "live"


def test_an_sla_warning_is_kept_unless_a_later_raised_one_is_known() -> None:
    changes = BoardChanges()
    for stage, raised in (("review", 10), ("ship", 5), ("ship", 10)):
        changes.sla(
            order_id=ORDER,
            channel="web",
            stage=stage,
            deadline=at(100 + raised),
            status="at_risk",
            raised_at=at(raised),
        )
    row = fold_order(EMPTY, changes.orders[ORDER]).row
    assert (row["sla_stage"], row["sla_deadline"], row["sla_status"], row["sla_raised_at"]) == (
        "ship",
        at(110),
        "at_risk",
        at(10),
    )
    stored = {**EMPTY, "sla_raised_at": at(50), "sla_stage": "review"}
    later = fold_order(stored, changes.orders[ORDER])
    assert later.row["sla_stage"] == "review" and later.changed is False


def test_facts_are_written_as_told() -> None:
    changes = BoardChanges()
    customer = uuid.UUID(int=42)
    changes.order_routed(order_id=ORDER, channel="web", routing={"warehouse": "WH-SH"})
    changes.customer_resolved(order_id=ORDER, channel="web", customer_id=customer)
    changes.credit_degraded(order_id=ORDER, channel="web", reason="bureau down", degraded_at=T0)
    row = fold_order(EMPTY, changes.orders[ORDER]).row
    assert json.loads(row["routing"]) == {"warehouse": "WH-SH"}
    assert row["customer_id"] == customer
    assert (row["credit_degraded"], row["credit_reason"], row["credit_degraded_at"]) == (
        True,
        "bureau down",
        T0,
    )


def test_entering_the_exception_state_with_a_cause_parks_the_order_and_leaving_it_releases() -> (
    None
):
    changes = BoardChanges()
    moved(changes, "exception", 1, from_state="paid", cause="stock_short", reason="no stock")
    moved(changes, "exception", 2, from_state="paid")  # no cause: nothing opened
    moved(changes, "reserved", 3, from_state="exception")
    raised, released = changes.exceptions
    assert isinstance(raised, ExceptionRaised) and isinstance(released, ParkedReleased)
    assert (raised.order_id, raised.cause, raised.exception_id, raised.channel) == (
        ORDER,
        "stock_short",
        None,
        "web",
    )
    assert (raised.detail, raised.raised_at, raised.parks_order) == ("no stock", at(1), True)
    assert (released.order_id, released.to_state, released.changed_at) == (ORDER, "reserved", at(3))
    assert raised.when is changes.orders[ORDER][0]
    assert released.when is changes.orders[ORDER][2]
    fold_order(EMPTY, changes.orders[ORDER])
    assert is_due(raised) and is_due(released)


def test_an_exception_told_by_an_older_transition_is_not_due() -> None:
    changes = BoardChanges()
    moved(changes, "shipped", 10, from_state="reserved")
    moved(changes, "exception", 5, from_state="paid", cause="stock_short")
    fold_order(EMPTY, changes.orders[ORDER])
    (raised,) = changes.exceptions
    assert not is_due(raised)


def test_exceptions_raised_and_resolved_directly_are_due_and_touch_the_order() -> None:
    changes = BoardChanges()
    exception_id = uuid.UUID(int=9)
    changes.exception_raised(
        order_id=ORDER,
        cause="address",
        exception_id=exception_id,
        channel="app",
        detail="no street",
        raised_at=T0,
    )
    changes.exception_resolved(
        order_id=ORDER,
        cause="address",
        exception_id=exception_id,
        channel="app",
        resolution="fixed",
        resolved_at=at(60),
    )
    raised, resolved = changes.exceptions
    assert raised == ExceptionRaised(ORDER, "address", exception_id, "app", "no street", T0, False)
    assert resolved == ExceptionResolved(ORDER, "address", exception_id, "app", "fixed", at(60))
    assert is_due(raised) and is_due(resolved)
    fold = fold_order(EMPTY, changes.orders[ORDER])
    assert fold.changed and fold.row["channel"] == "app"


def test_stock_and_channel_entries_keep_the_latest_per_key_and_the_last_of_equals() -> None:
    changes = BoardChanges()
    changes.stock_low(sku="S", warehouse="W", available=3, safety_stock=5, raised_at=at(10))
    changes.stock_low(sku="S", warehouse="W", available=9, safety_stock=5, raised_at=at(5))
    changes.stock_low(sku="S", warehouse=None, available=2, safety_stock=4, raised_at=at(10))
    assert changes.low_stock == {
        "S": (at(10), {"warehouse": None, "available": 2, "safety_stock": 4})
    }
    changes.stock_level(sku="S", warehouse="W", available=4, changed_at=at(2))
    changes.stock_level(sku="S", warehouse="W", available=1, changed_at=at(1))
    changes.stock_level(sku="S", warehouse="V", available=7, changed_at=at(1))
    assert changes.stock_levels == {
        ("S", "W"): (at(2), {"available": 4}),
        ("S", "V"): (at(1), {"available": 7}),
    }
    changes.channel_sales(sku="S", channel="live", paused=True, reason="cap", changed_at=at(3))
    changes.channel_sales(sku="S", channel="live", paused=False, reason="old", changed_at=at(0))
    assert changes.channel_pauses == {("S", "live"): (at(3), {"paused": True, "reason": "cap"})}
