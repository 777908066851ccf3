"""SLA deadlines, alert decisions, cause classification and resolutions, with plain objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from oms_contracts.events import ExceptionCause
from order_svc.domain.exceptions import (
    CAUSES,
    Action,
    Effect,
    ResolutionRefused,
    classify,
    plan_resolution,
)
from order_svc.domain.order import OrderState
from order_svc.domain.sla import (
    Alert,
    Deadline,
    PolicyError,
    SlaPolicy,
    deadline_for,
    due_alert,
    stages_finished,
    stages_started,
)

T0 = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)
S = OrderState


# -- deadlines ---------------------------------------------------------------------------


def test_by_default_normal_orders_get_two_hours_and_urgent_ones_thirty_minutes() -> None:
    policy = SlaPolicy.with_overrides()
    normal = deadline_for(policy, "review", "web", "normal", T0)
    urgent = deadline_for(policy, "review", "tmall", "urgent", T0)
    assert normal is not None and normal.deadline_at == T0 + timedelta(hours=2)
    assert urgent is not None and urgent.deadline_at == T0 + timedelta(minutes=30)


def test_a_channel_override_applies_to_that_channel_and_class_only() -> None:
    policy = SlaPolicy.with_overrides({"review": {"live": {"urgent": 5}}})
    live_urgent = deadline_for(policy, "review", "live", "urgent", T0)
    live_normal = deadline_for(policy, "review", "live", "normal", T0)
    web_urgent = deadline_for(policy, "review", "web", "urgent", T0)
    assert live_urgent is not None and live_urgent.deadline_at == T0 + timedelta(seconds=5)
    assert live_normal is not None and live_normal.deadline_at == T0 + timedelta(hours=2)
    assert web_urgent is not None and web_urgent.deadline_at == T0 + timedelta(minutes=30)


def test_a_stage_without_a_configured_deadline_has_no_clock() -> None:
    policy = SlaPolicy.with_overrides()
    assert deadline_for(policy, "ship", "web", "normal", T0) is None
    assert deadline_for(policy, "review", "web", "unknown-class", T0) is None
    shipping = SlaPolicy.with_overrides({"ship": {"*": {"normal": 86400}}})
    assert deadline_for(shipping, "ship", "web", "normal", T0) is not None


@pytest.mark.parametrize(
    "overrides",
    [{"nope": {"*": {"normal": 1}}}, {"review": {"*": {"normal": 0}}}],
)
def test_a_policy_with_an_unknown_stage_or_no_time_is_refused(
    overrides: dict[str, dict[str, dict[str, float]]],
) -> None:
    with pytest.raises(PolicyError):
        SlaPolicy.with_overrides(overrides)


def test_review_starts_when_received_and_ends_when_confirmed_or_cancelled() -> None:
    assert [s.name for s in stages_started(S.RECEIVED)] == ["review"]
    assert [s.name for s in stages_finished(S.CONFIRMED)] == ["review"]
    assert "review" in [s.name for s in stages_finished(S.CANCELLED)]
    for held in (S.PENDING_PAYMENT, S.PAID, S.CREDIT_CHECK, S.EXCEPTION, S.RESERVED):
        assert "review" not in [s.name for s in stages_finished(held)]


# -- alerts ------------------------------------------------------------------------------

CLOCK = Deadline("review", T0, T0 + timedelta(seconds=100))


def test_the_at_risk_point_is_eighty_percent_of_the_allowance() -> None:
    assert CLOCK.at_risk_at == T0 + timedelta(seconds=80)
    assert CLOCK.seconds_left(T0 + timedelta(seconds=130)) == -30


@pytest.mark.parametrize(
    ("seconds", "at_risk_sent", "breached_sent", "expected"),
    [
        (79, False, False, None),
        (80, False, False, Alert.AT_RISK),
        (99, True, False, None),
        (100, True, False, Alert.BREACHED),
        (100, False, False, Alert.BREACHED),  # the late warning is skipped, not sent late
        (500, True, True, None),  # once per order and stage
    ],
)
def test_each_alert_is_owed_once_at_its_time(
    seconds: int, at_risk_sent: bool, breached_sent: bool, expected: Alert | None
) -> None:
    now = T0 + timedelta(seconds=seconds)
    assert (
        due_alert(CLOCK, at_risk_sent=at_risk_sent, breached_sent=breached_sent, now=now)
        == expected
    )


# -- causes ------------------------------------------------------------------------------


def test_the_domains_causes_are_the_contracts_causes() -> None:
    assert set(CAUSES) == set(get_args(ExceptionCause))


@pytest.mark.parametrize(
    ("reason", "cause", "detail"),
    [
        ("stock_rejected (SKU-1: insufficient)", "stock_rejected", "SKU-1: insufficient"),
        ("credit_refused (limit exceeded (hard))", "credit_refused", "limit exceeded (hard)"),
        (
            "routing_impossible (no warehouse has cold chain)",
            "routing_impossible",
            "no warehouse has cold chain",
        ),
        ("invalid_address", "invalid_address", None),
        ("the customer phoned", "manual_review", "the customer phoned"),
        ("unknown_cause (x)", "manual_review", "unknown_cause (x)"),
        (None, "manual_review", None),
    ],
)
def test_a_reason_is_classified_by_its_leading_cause(
    reason: str | None, cause: str, detail: str | None
) -> None:
    assert classify(reason) == (cause, detail)


# -- resolutions -------------------------------------------------------------------------


def test_retry_resumes_a_held_order_and_is_refused_otherwise() -> None:
    assert plan_resolution(Action.RETRY, "stock_rejected", S.EXCEPTION) is Effect.RESUME
    with pytest.raises(ResolutionRefused):
        plan_resolution(Action.RETRY, "stock_rejected", S.PAID)
    with pytest.raises(ResolutionRefused):  # an SLA breach does not hold the order
        plan_resolution(Action.RETRY, "sla_breached", S.EXCEPTION)


def test_release_closes_advisory_exceptions_but_not_one_holding_the_order() -> None:
    assert plan_resolution(Action.RELEASE, "credit_degraded", S.CONFIRMED) is Effect.NONE
    assert plan_resolution(Action.RELEASE, "sla_breached", S.EXCEPTION) is Effect.NONE
    with pytest.raises(ResolutionRefused):
        plan_resolution(Action.RELEASE, "stock_rejected", S.EXCEPTION)


def test_cancel_cancels_until_the_parcel_leaves() -> None:
    assert plan_resolution(Action.CANCEL, "stock_rejected", S.EXCEPTION) is Effect.CANCEL
    assert plan_resolution(Action.CANCEL, "sla_breached", S.CANCELLED) is Effect.NONE
    with pytest.raises(ResolutionRefused):
        plan_resolution(Action.CANCEL, "sla_breached", S.SHIPPED)
