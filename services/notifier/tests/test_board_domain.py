"""The board's rules on plain values: causes, which update wins, the sparkline, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifier.domain.board import (
    DEFAULT_CAUSE,
    Counts,
    exception_cause,
    minute_of,
    seconds_left,
    sla_running,
    sparkline,
    supersedes,
)

T0 = datetime(2026, 11, 11, 10, 30, 15, 500_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reason", "cause"),
    [
        ("stock_rejected (SKU-1: insufficient)", "stock_rejected"),
        ("credit_refused (bureau said no)", "credit_refused"),
        ("sla_breached", "sla_breached"),
        ("  invalid_address  (no postal code)", "invalid_address"),
        ("something odd happened", DEFAULT_CAUSE),
        ("stock_rejected_but_not_really (x)", DEFAULT_CAUSE),
        ("", DEFAULT_CAUSE),
        (None, DEFAULT_CAUSE),
    ],
)
def test_the_cause_is_read_from_order_svcs_reason(reason: str | None, cause: str) -> None:
    assert exception_cause(reason) == cause


def test_a_later_or_equal_update_supersedes_and_an_earlier_one_does_not() -> None:
    assert supersedes(T0, None)
    assert supersedes(T0, T0)
    assert supersedes(T0 + timedelta(microseconds=1), T0)
    assert not supersedes(T0 - timedelta(microseconds=1), T0)


def test_sparkline_is_oldest_first_with_zeros_for_quiet_minutes() -> None:
    now = minute_of(T0)
    buckets = {now: 4, now - timedelta(minutes=2): 7, now - timedelta(minutes=9): 99}
    assert sparkline(buckets, now=T0, minutes=4) == [0, 7, 0, 4]


def test_minute_of_truncates_to_the_minute() -> None:
    assert minute_of(T0) == datetime(2026, 11, 11, 10, 30, tzinfo=UTC)


def test_seconds_left_counts_down_and_goes_negative() -> None:
    assert seconds_left(T0 + timedelta(seconds=90, milliseconds=400), T0) == 90
    assert seconds_left(T0, T0) == 0
    assert seconds_left(T0 - timedelta(milliseconds=1), T0) == -1
    assert seconds_left(T0 - timedelta(minutes=5), T0) == -300


def test_counts_have_both_margins_and_states_in_life_cycle_order() -> None:
    counts = Counts.of(
        [
            ("exception", "web", 1),
            ("confirmed", "web", 3),
            ("confirmed", "app", 2),
            ("received", "app", 5),
            ("mystery", "web", 1),
        ]
    )
    assert list(counts.cells) == ["received", "confirmed", "exception", "mystery"]
    assert counts.cells["confirmed"] == {"app": 2, "web": 3}
    assert counts.by_state == {"received": 5, "confirmed": 5, "exception": 1, "mystery": 1}
    assert counts.by_channel == {"app": 7, "web": 5}
    assert counts.total == 12


def test_no_orders_no_counts() -> None:
    counts = Counts.of([])
    assert (counts.cells, counts.by_state, counts.by_channel, counts.total) == ({}, {}, {}, 0)


@pytest.mark.parametrize(
    ("stage", "state", "running"),
    [
        ("review", "received", True),
        ("review", "exception", True),
        ("review", "confirmed", False),
        ("review", "cancelled", False),
        ("ship", "confirmed", True),
        ("ship", "picking", True),
        ("ship", "shipped", False),
        ("ship", "refunded", False),
        ("some_new_stage", "shipped", True),
        ("some_new_stage", "delivered", False),
        ("ship", None, True),
    ],
)
def test_an_sla_warning_matters_until_its_stage_is_met_or_the_order_closed(
    stage: str, state: str | None, running: bool
) -> None:
    assert sla_running(stage, state) is running
