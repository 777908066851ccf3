"""The pure alert rules on plain objects: dedupe keys, scrubbing, targets, signing,
retries and digests."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from notifier.domain import rules
from notifier.domain.delivery import (
    RetryPolicy,
    after_attempt,
    backoff,
    digest_due,
    email_text,
    encode_body,
    goes_to_digest,
    sign,
    summarize,
    verify,
    webhook_body,
)
from notifier.domain.subscriptions import (
    SubscriptionView,
    TargetPolicy,
    TargetRefused,
    check_email,
    check_webhook_url,
    matches,
)
from oms_contracts.events import (
    CreditCheckDegraded,
    CustomerUpdated,
    OrderExceptionRaised,
    RejectedLine,
    SlaAtRisk,
    SlaBreached,
    StockLow,
    StockRejected,
)
from oms_servicekit.outbound import parse_networks

NOW = datetime(2026, 11, 11, 10, 0, 30, tzinfo=UTC)
ORDER = uuid.UUID("00000000-0000-0000-0000-0000000000aa")


def exception(cause: str, detail: str | None = None) -> OrderExceptionRaised:
    return OrderExceptionRaised(
        exception_id=uuid.uuid4(),
        order_id=ORDER,
        channel="web",
        cause=cause,  # type: ignore[arg-type]
        detail=detail,
        raised_at=NOW,
    )


# -- dedupe keys: one alert per cause and order --------------------------------------


def test_stock_rejection_and_its_exception_share_one_dedupe_key() -> None:
    rejected = StockRejected(
        order_id=ORDER,
        lines=[RejectedLine(line_no=1, sku="A", qty=1, reason="insufficient", available=0)],
        rejected_at=NOW,
    )
    from_rejection = rules.stock_rejected(rejected, uuid.uuid4())
    from_exception = rules.order_exception(exception("stock_rejected"))
    assert from_rejection.dedupe_key == from_exception.dedupe_key == f"stock_rejected:{ORDER}"
    # Both are exception orders for subscriptions, grouped by their cause in digests.
    assert from_rejection.event_type == from_exception.event_type == "OrderExceptionRaised"
    assert from_rejection.digest_group == from_exception.digest_group == "stock_rejected"


def test_other_causes_of_the_same_order_are_other_alerts() -> None:
    keys = {
        rules.order_exception(exception(c)).dedupe_key for c in ("stock_rejected", "manual_review")
    }
    assert len(keys) == 2


def test_degraded_credit_checks_are_one_incident_that_covers_their_exceptions() -> None:
    degraded = CreditCheckDegraded(order_id=ORDER, channel="web", reason="timeout", degraded_at=NOW)
    other = degraded.model_copy(update={"order_id": uuid.uuid4(), "reason": "breaker_open"})
    keys = {rules.credit_check_degraded(e).dedupe_key for e in (degraded, other)}
    assert keys == {rules.credit_incident_key()}  # not one per order
    assert rules.covered_by_incident(exception("credit_degraded"))
    assert not rules.covered_by_incident(exception("credit_refused"))


def test_sla_breach_is_critical_and_dedupes_with_its_exception() -> None:
    breached = SlaBreached(
        order_id=ORDER, channel="web", order_class="std", stage="ship", deadline=NOW, raised_at=NOW
    )
    spec = rules.sla_breached(breached)
    assert spec.severity == "critical"
    assert spec.dedupe_key == rules.order_exception(exception("sla_breached")).dedupe_key


def test_sla_at_risk_is_one_alert_per_order_and_stage() -> None:
    def at_risk(stage: str) -> str:
        event = SlaAtRisk(
            order_id=ORDER,
            channel="web",
            order_class="std",
            stage=stage,
            deadline=NOW,
            raised_at=NOW,
        )
        return rules.sla_at_risk(event).dedupe_key

    assert at_risk("pick") == at_risk("pick") != at_risk("ship")


def test_stock_low_crossings_are_told_apart_by_time() -> None:
    def low(at: datetime) -> rules.AlertSpec:
        return rules.stock_low(
            StockLow(sku="S", available=1, safety_stock=5, warehouse="WH-1", raised_at=at)
        )

    assert low(NOW).dedupe_key != low(NOW + timedelta(hours=1)).dedupe_key
    assert low(NOW).warehouse == "WH-1"


def test_customer_updates_are_notices_keyed_by_event() -> None:
    event = CustomerUpdated(customer_id=uuid.uuid4(), changed_fields=["addresses"], updated_at=NOW)
    first, second = uuid.uuid4(), uuid.uuid4()
    spec = rules.customer_updated(event, first)
    assert spec.notice and spec.severity == "info"
    assert spec.dedupe_key != rules.customer_updated(event, second).dedupe_key


# -- personal data --------------------------------------------------------------------


def test_scrub_masks_emails_and_phone_numbers() -> None:
    text = "call +86 138 0000 0001 or mail li.lei@example.com about order 42"
    scrubbed = rules.scrub(text)
    assert scrubbed is not None
    assert "li.lei@example.com" not in scrubbed and "0000 0001" not in scrubbed
    assert scrubbed.endswith("about order 42")
    assert rules.scrub(None) is None


def test_exception_detail_is_scrubbed_in_message_and_details() -> None:
    spec = rules.order_exception(exception("invalid_address", "customer a@b.example unreachable"))
    assert "a@b.example" not in spec.message
    assert "a@b.example" not in str(spec.details)


# -- subscriptions and targets --------------------------------------------------------


def test_filters_must_be_met() -> None:
    sub = SubscriptionView(["SlaBreached"], channel="web")
    assert matches(sub, event_type="SlaBreached", channel="web", warehouse=None)
    assert not matches(sub, event_type="SlaBreached", channel="shop", warehouse=None)
    assert not matches(sub, event_type="SlaBreached", channel=None, warehouse=None)
    assert not matches(sub, event_type="StockLow", channel="web", warehouse=None)
    by_wh = SubscriptionView(["StockLow"], warehouse="WH-1")
    assert matches(by_wh, event_type="StockLow", channel=None, warehouse="WH-1")
    assert not matches(by_wh, event_type="StockLow", channel=None, warehouse="WH-2")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/hook",
        "http://metadata.google.internal/computeMetadata",
        "http://0.0.0.0:8080/",
        "http://user:pw@example.com/",
        "http:///nohost",
        "http://example.com:99999/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_forbidden_webhook_urls_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_webhook_url(url, TargetPolicy())


def test_public_and_by_default_loopback_urls_are_accepted() -> None:
    policy = TargetPolicy()
    assert check_webhook_url("https://hooks.example.com/oms", policy)
    assert check_webhook_url("http://127.0.0.1:9000/hook", policy)
    assert check_webhook_url("http://localhost:9000/hook", policy)


def test_loopback_is_refused_when_not_allowed() -> None:
    strict = TargetPolicy(allowed=parse_networks([]))
    for url in ("http://127.0.0.1:9000/", "http://localhost/", "http://[::1]/"):
        with pytest.raises(TargetRefused):
            check_webhook_url(url, strict)
    assert not strict.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert strict.address_allowed(ipaddress.ip_address("93.184.216.34"))


@pytest.mark.parametrize("address", ["ops@example.com", "a.b+c@mail.example.org"])
def test_valid_email_addresses(address: str) -> None:
    assert check_email(address) == address


@pytest.mark.parametrize("address", ["nobody", "a@b", "a@b.com\r\nBcc: x@y.com", "@x.com"])
def test_invalid_email_addresses(address: str) -> None:
    with pytest.raises(TargetRefused):
        check_email(address)


# -- signing --------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = encode_body({"b": 1, "a": "x"})
    assert body == b'{"a":"x","b":1}'
    # Computed independently: printf '%s' '{"a":"x","b":1}' | openssl dgst -sha256 -hmac s3cret
    import hashlib
    import hmac

    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={expected}"
    assert verify("s3cret", body, f"sha256={expected}")
    assert not verify("other", body, f"sha256={expected}")
    assert not verify("s3cret", body + b" ", f"sha256={expected}")
    assert not verify("s3cret", body, None)


def test_webhook_body_carries_delivery_id_and_time_under_the_signature() -> None:
    alert = {
        "id": uuid.uuid4(),
        "alert_type": "stock_low",
        "severity": "warning",
        "subject": "S",
        "message": "low",
        "details": {},
        "raised_at": NOW,
    }
    body = webhook_body(delivery_id="d-1", sent_at=NOW, alert=alert)
    assert body["delivery_id"] == "d-1" and body["sent_at"] == NOW.isoformat()
    assert body["kind"] == "alert" and body["alert"]["id"] == str(alert["id"])
    subject, text = email_text(body)
    assert subject == "[OMS warning] stock_low: S"
    assert "low" in text and "d-1" in text


# -- retries --------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_s=2, cap_s=60)
    assert backoff(1, policy, rand=lambda: 0.0) == 1.0
    assert backoff(1, policy, rand=lambda: 1.0) == 2.0
    assert backoff(3, policy, rand=lambda: 1.0) == 8.0
    assert backoff(30, policy, rand=lambda: 1.0) == 60.0
    assert 30.0 <= backoff(30, policy) <= 60.0


def test_a_failed_attempt_is_retried_until_the_give_up_time() -> None:
    policy = RetryPolicy(base_s=10, cap_s=100, max_age_s=3600)
    give_up = NOW + timedelta(seconds=15)
    retry = after_attempt(ok=False, attempts=1, now=NOW, give_up_at=give_up, policy=policy)
    assert retry.state == "pending"
    assert retry.next_attempt_at is not None and NOW < retry.next_attempt_at <= give_up
    # The last retry never lands after the give-up time ...
    late = after_attempt(
        ok=False, attempts=5, now=NOW, give_up_at=give_up, policy=policy, rand=lambda: 1.0
    )
    assert late.next_attempt_at == give_up
    # ... and a failure at or after it is final.
    final = after_attempt(ok=False, attempts=6, now=give_up, give_up_at=give_up, policy=policy)
    assert (final.state, final.next_attempt_at) == ("failed", None)


def test_success_delivers_and_permanent_refusal_fails_at_once() -> None:
    policy = RetryPolicy()
    later = NOW + timedelta(days=1)
    ok = after_attempt(ok=True, attempts=1, now=NOW, give_up_at=later, policy=policy)
    assert ok.state == "delivered"
    refused = after_attempt(
        ok=False, attempts=1, now=NOW, give_up_at=later, policy=policy, permanent=True
    )
    assert refused.state == "failed"


# -- digests and summaries ------------------------------------------------------------


def test_digest_takes_what_exceeds_the_threshold_and_goes_at_the_end_of_the_minute() -> None:
    assert [goes_to_digest(n, 5) for n in range(1, 8)] == [False] * 5 + [True] * 2
    window = rules.window_start(NOW)
    assert window == datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
    assert digest_due(window, grace_s=2) == datetime(2026, 11, 11, 10, 1, 2, tzinfo=UTC)


def test_delivery_summary() -> None:
    assert summarize([]) == "none"
    assert summarize(["delivered", "pending"]) == "pending"
    assert summarize(["delivered", "in_flight"]) == "pending"
    assert summarize(["delivered", "failed"]) == "failed"
    assert summarize(["delivered", "cancelled"]) == "delivered"
    assert summarize(["cancelled"]) == "cancelled"


def test_mail_subjects_cannot_carry_headers() -> None:
    body = webhook_body(
        delivery_id="d-2",
        sent_at=NOW,
        alert={
            "id": uuid.uuid4(),
            "alert_type": "x\r\nBcc: evil@example.com",
            "severity": "info",
            "subject": "s",
            "message": "m",
            "details": {},
            "raised_at": NOW,
        },
    )
    subject, _ = email_text(body)
    assert "\r" not in subject and "\n" not in subject
