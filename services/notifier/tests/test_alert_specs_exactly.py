"""Every alert rule's whole alert, as plain objects: type, severity, subject, message,
dedupe key, details, channel and warehouse, with customers' contacts scrubbed from free
text. A whole-value comparison, so a changed word or key is noticed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from notifier.domain.alerts import ORDER_EXCEPTION
from notifier.domain.rules import (
    AlertSpec,
    channel_cancellation,
    channel_sales_paused,
    covered_by_incident,
    credit_check_degraded,
    credit_incident_key,
    credit_incident_message,
    customer_updated,
    foreign_alert,
    order_exception,
    sla_at_risk,
    sla_breached,
    stock_low,
    stock_rejected,
    window_start,
)
from oms_contracts.events import (
    AlertRaised,
    ChannelSalesPaused,
    CreditCheckDegraded,
    CustomerUpdated,
    OrderCancelled,
    OrderExceptionRaised,
    RejectedLine,
    SlaAtRisk,
    SlaBreached,
    StockLow,
    StockRejected,
)
from oms_servicekit.personal_data import scrub

AT = datetime(2026, 11, 11, 8, 30, 15, 250, tzinfo=UTC)
ISO = AT.isoformat()
ORDER = uuid.UUID(int=1)
OTHER = uuid.UUID(int=2)
CONTACT = "call li.lei@example.com"


def test_sla_alerts() -> None:
    fields = {
        "order_id": ORDER,
        "channel": "web",
        "order_class": "standard",
        "stage": "ship",
        "deadline": AT,
        "raised_at": AT,
    }
    details = {
        "order_id": str(ORDER),
        "channel": "web",
        "order_class": "standard",
        "stage": "ship",
        "deadline": ISO,
    }
    assert sla_at_risk(SlaAtRisk(**fields)) == AlertSpec(
        event_type="SlaAtRisk",
        alert_type="sla_at_risk",
        severity="warning",
        subject=str(ORDER),
        message=f"order {ORDER} at risk of missing its ship SLA (deadline {ISO})",
        dedupe_key=f"sla_at_risk:{ORDER}:ship",
        details=details,
        channel="web",
    )
    assert sla_breached(SlaBreached(**fields)) == AlertSpec(
        event_type="SlaBreached",
        alert_type="sla_breached",
        severity="critical",
        subject=str(ORDER),
        message=f"order {ORDER} missed its ship SLA (deadline {ISO})",
        dedupe_key=f"sla_breached:{ORDER}",
        details=details,
        channel="web",
    )


def test_stock_low_with_and_without_a_warehouse() -> None:
    event = StockLow(sku="S-1", available=2, safety_stock=5, warehouse="WH-SH", raised_at=AT)
    assert stock_low(event) == AlertSpec(
        event_type="StockLow",
        alert_type="stock_low",
        severity="warning",
        subject="S-1",
        message="S-1 in WH-SH: available 2 below safety stock 5",
        dedupe_key=f"stock_low:S-1:WH-SH:{ISO}",
        details={"sku": "S-1", "warehouse": "WH-SH", "available": 2, "safety_stock": 5},
        warehouse="WH-SH",
    )
    anywhere = stock_low(StockLow(sku="S-1", available=0, safety_stock=1, raised_at=AT))
    assert anywhere.message == "S-1: available 0 below safety stock 1"
    assert anywhere.dedupe_key == f"stock_low:S-1:*:{ISO}"
    assert anywhere.warehouse is None and anywhere.details["warehouse"] is None


def test_channel_sales_paused_scrubs_the_reason() -> None:
    event = ChannelSalesPaused(sku="S-1", channel="live", reason=CONTACT, paused_at=AT)
    reason = scrub(CONTACT)
    assert "li.lei@example.com" not in str(reason)
    assert channel_sales_paused(event) == AlertSpec(
        event_type="ChannelSalesPaused",
        alert_type="channel_sales_paused",
        severity="warning",
        subject="S-1",
        message=f"sales of S-1 on live paused: {reason}",
        dedupe_key=f"channel_sales_paused:S-1:live:{ISO}",
        details={"sku": "S-1", "channel": "live", "reason": reason},
        channel="live",
    )


def test_a_degraded_credit_check_opens_the_incident() -> None:
    event = CreditCheckDegraded(
        order_id=ORDER, channel="web", reason="timeout", detail=CONTACT, degraded_at=AT
    )
    assert credit_incident_key() == "credit_incident:credit-bureau"
    assert credit_incident_key("other") == "credit_incident:other"
    assert credit_incident_message(3, "x") == (
        "credit checks degraded since x: 3 order(s) so far went on as credit OK and await"
        " review in the exception queue (cause credit_degraded)"
    )
    assert credit_check_degraded(event) == AlertSpec(
        event_type="CreditCheckDegraded",
        alert_type="credit_incident",
        severity="warning",
        subject="credit-bureau",
        message=credit_incident_message(1, ISO),
        dedupe_key="credit_incident:credit-bureau",
        details={
            "orders_affected": 1,
            "since": ISO,
            "first_order_id": str(ORDER),
            "last_order_id": str(ORDER),
            "reason": "timeout",
            "detail": scrub(CONTACT),
        },
    )


#: One exception event; each case below changes its cause and detail.
RAISED = OrderExceptionRaised(
    exception_id=OTHER, order_id=ORDER, channel="app", cause="manual_review", raised_at=AT
)


def exception(cause: str, detail: str | None) -> OrderExceptionRaised:
    return RAISED.model_copy(update={"cause": cause, "detail": detail})


def test_an_order_exception_alert_its_severity_and_the_incidents_cover() -> None:
    assert order_exception(exception("invalid_address", CONTACT)) == AlertSpec(
        event_type="OrderExceptionRaised",
        alert_type=ORDER_EXCEPTION,
        cause="invalid_address",
        severity="warning",
        subject=str(ORDER),
        message=f"order {ORDER} needs attention: invalid_address ({scrub(CONTACT)})",
        dedupe_key=f"invalid_address:{ORDER}",
        details={
            "order_id": str(ORDER),
            "exception_id": str(OTHER),
            "channel": "app",
            "cause": "invalid_address",
            "detail": scrub(CONTACT),
        },
        channel="app",
    )
    bare = order_exception(exception("sla_breached", None))
    assert bare.message == f"order {ORDER} needs attention: sla_breached"
    assert bare.severity == "critical"
    assert order_exception(exception("credit_refused", None)).severity == "critical"
    assert bare.digest_group == "sla_breached"
    assert covered_by_incident(exception("credit_degraded", None))
    assert not covered_by_incident(exception("credit_refused", None))


def test_only_a_channels_cancellation_is_alerted() -> None:
    def cancelled(actor: str) -> OrderCancelled:
        return OrderCancelled(
            order_id=ORDER, channel="tmall", reason=CONTACT, actor=actor, cancelled_at=AT
        )

    assert channel_cancellation(cancelled("alice")) is None
    assert channel_cancellation(cancelled("tmall:channel:x")) is None
    assert channel_cancellation(cancelled("channel:tmall")) == AlertSpec(
        event_type="OrderCancelled",
        alert_type="channel_cancelled",
        severity="info",
        subject=str(ORDER),
        message=(
            f"order {ORDER} was cancelled by channel tmall ({scrub(CONTACT)}); its stock is"
            " released"
        ),
        dedupe_key=f"channel_cancelled:{ORDER}",
        details={
            "order_id": str(ORDER),
            "channel": "tmall",
            "reason": scrub(CONTACT),
            "cancelled_at": ISO,
        },
        channel="tmall",
    )


def test_a_stock_rejection_is_the_orders_stock_rejected_exception() -> None:
    lines = [
        RejectedLine(line_no=2, sku="B", qty=1, reason="channel_cap"),
        RejectedLine(line_no=1, sku="A", qty=3, reason="insufficient", available=1),
    ]
    event = StockRejected(order_id=ORDER, lines=lines, rejected_at=AT)
    assert stock_rejected(event, OTHER) == AlertSpec(
        event_type="OrderExceptionRaised",
        alert_type=ORDER_EXCEPTION,
        cause="stock_rejected",
        severity="warning",
        subject=str(ORDER),
        message=(
            "stock rejected: line 1 A x3: insufficient (available 1); line 2 B x1: channel_cap"
        ),
        dedupe_key=f"stock_rejected:{ORDER}",
        details={
            "order_id": str(ORDER),
            "cause": "stock_rejected",
            "reasons": ["channel_cap", "insufficient"],
            "lines": [
                {"line_no": 2, "sku": "B", "qty": 1, "reason": "channel_cap", "available": None},
                {"line_no": 1, "sku": "A", "qty": 3, "reason": "insufficient", "available": 1},
            ],
            "rejected_at": ISO,
            "source_event_id": str(OTHER),
        },
    )


def test_a_customer_update_is_a_notice_with_ids_and_field_names_only() -> None:
    event = CustomerUpdated(
        customer_id=ORDER,
        changed_fields=["phone", "tags"],
        delivery_requirements=["cold_chain"],
        tags=["vip"],
        updated_at=AT,
    )
    assert customer_updated(event, OTHER) == AlertSpec(
        event_type="CustomerUpdated",
        alert_type="customer_updated",
        severity="info",
        subject=str(ORDER),
        message=f"customer {ORDER} updated: phone, tags",
        dedupe_key=f"customer_updated:{OTHER}",
        details={
            "customer_id": str(ORDER),
            "changed_fields": ["phone", "tags"],
            "delivery_requirements": ["cold_chain"],
            "tags": ["vip"],
            "updated_at": ISO,
        },
        notice=True,
    )
    nothing = CustomerUpdated(customer_id=ORDER, changed_fields=[], updated_at=AT)
    assert customer_updated(nothing, OTHER).message == f"customer {ORDER} updated: n/a"


def test_a_foreign_alert_is_kept_with_its_text_scrubbed() -> None:
    event = AlertRaised(
        alert_id=OTHER,
        alert_type="relay_parked",
        severity="critical",
        subject="outbox",
        message=CONTACT,
        details={"channel": "web", "warehouse": "WH-BJ", "note": CONTACT, "count": 3},
        raised_at=AT,
    )
    assert foreign_alert(event) == AlertSpec(
        event_type="AlertRaised",
        alert_type="relay_parked",
        severity="critical",
        subject="outbox",
        message=scrub(CONTACT) or "",
        dedupe_key=f"alert:{OTHER}",
        details={"channel": "web", "warehouse": "WH-BJ", "note": scrub(CONTACT), "count": 3},
        channel="web",
        warehouse="WH-BJ",
    )
    odd = AlertRaised(
        alert_id=OTHER,
        alert_type="x",
        severity="info",
        subject="s",
        message="m",
        details={"channel": 1, "warehouse": ["W"]},
        raised_at=AT,
    )
    spec = foreign_alert(odd)
    assert (spec.channel, spec.warehouse, spec.message) == (None, None, "m")


def test_digests_group_per_minute() -> None:
    assert window_start(AT) == datetime(2026, 11, 11, 8, 30, tzinfo=UTC)
