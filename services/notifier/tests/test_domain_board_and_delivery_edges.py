"""Notifier's domain at its edges, as plain objects: an order first seen through any event
still shows its channel on the board, exception causes and channel order, when a retry
and a digest are due, and the reasons a subscription target is refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifier.domain.board import Counts, exception_cause
from notifier.domain.board_changes import BoardChanges, StateChange, fold_order
from notifier.domain.delivery import RetryPolicy, after_attempt, alert_payload, digest_due
from notifier.domain.subscriptions import (
    TargetPolicy,
    TargetRefused,
    check_email,
    check_webhook_url,
)

NOW = datetime(2026, 11, 11, 10, 0, 30, tzinfo=UTC)
ORDER = uuid.UUID(int=7)

#: Each kind of event the board may hear of an order first, told by channel "web".
FIRST_HEARD: dict[str, Callable[[BoardChanges], None]] = {
    "routed": lambda c: c.order_routed(order_id=ORDER, channel="web", routing={"to": "WH-SH"}),
    "customer": lambda c: c.customer_resolved(
        order_id=ORDER, channel="web", customer_id=uuid.UUID(int=8)
    ),
    "credit": lambda c: c.credit_degraded(
        order_id=ORDER, channel="web", reason="timeout", degraded_at=NOW
    ),
    "sla": lambda c: c.sla(
        order_id=ORDER,
        channel="web",
        stage="review",
        deadline=NOW,
        status="at_risk",
        raised_at=NOW,
    ),
    "raised": lambda c: c.exception_raised(
        order_id=ORDER,
        cause="stock_rejected",
        exception_id=None,
        channel="web",
        detail=None,
        raised_at=NOW,
    ),
    "resolved": lambda c: c.exception_resolved(
        order_id=ORDER,
        cause="stock_rejected",
        exception_id=uuid.UUID(int=9),
        channel="web",
        resolution="retried",
        resolved_at=NOW,
    ),
}


@pytest.mark.parametrize("event", sorted(FIRST_HEARD))
def test_an_order_first_heard_of_through_any_event_shows_its_channel(event: str) -> None:
    changes = BoardChanges()
    FIRST_HEARD[event](changes)
    assert list(changes.orders) == [ORDER]
    assert fold_order({}, changes.orders[ORDER]).row["channel"] == "web"


def test_a_state_change_is_kept_with_where_it_came_from_and_why() -> None:
    changes = BoardChanges()
    reason = "stock_rejected (SKU-1: insufficient)"
    told = {"from_state": "paid", "to_state": "exception", "reason": reason}
    changes.state_changed(order_id=ORDER, channel="web", changed_at=NOW, cause="oos", **told)
    change = StateChange("web", "paid", "exception", reason, NOW, "oos")
    assert changes.orders[ORDER] == [change]


def test_a_cause_is_read_before_the_first_parenthesis_only() -> None:
    reason = "routing_impossible (cold_chain: no warehouse (all refused))"
    assert exception_cause(reason) == "routing_impossible"


def test_the_boards_channels_are_in_name_order_within_a_state() -> None:
    counts = Counts.of([("paid", "web", 1), ("paid", "app", 5), ("paid", "shop", 3)])
    assert list(counts.cells["paid"]) == ["app", "shop", "web"]


def test_a_retry_waits_at_least_half_its_step_and_a_digest_two_seconds_past_its_minute() -> None:
    policy = RetryPolicy(base_s=10, cap_s=100, max_age_s=3600)
    give_up = NOW + timedelta(hours=1)
    soonest = after_attempt(
        ok=False, attempts=1, now=NOW, give_up_at=give_up, policy=policy, rand=lambda: 0.0
    )
    assert soonest.next_attempt_at == NOW + timedelta(seconds=5)
    minute = NOW.replace(second=0)
    assert digest_due(minute) == minute + timedelta(seconds=62)


def test_a_delivered_alert_says_its_channel() -> None:
    alert: dict[str, Any] = dict.fromkeys(("alert_type", "severity", "subject", "message"), "x")
    alert |= {"id": uuid.UUID(int=1), "channel": "web", "raised_at": NOW}
    assert alert_payload(alert)["channel"] == "web"


def test_an_email_target_is_a_single_mailbox_of_at_most_254_characters() -> None:
    longest = "a" * 64 + "@" + "b" * 185 + ".com"
    assert len(longest) == 254 and check_email(longest) == longest
    for bad in (longest.replace("@", "@b"), "ops@example.com\n", "ops@example.com\nBcc: x@y.z"):
        with pytest.raises(TargetRefused) as refused:
            check_email(bad)
        assert str(refused.value) == "not a valid e-mail address"


def test_a_refused_webhook_url_says_why() -> None:
    with pytest.raises(TargetRefused) as refused:
        check_webhook_url("ftp://hooks.example.com/oms", TargetPolicy())
    assert str(refused.value) == "only http and https URLs are allowed"
