"""What a webhook and an e-mail carry for an alert or a digest, as plain objects: the
whole body, the exact subject and text, the signed bytes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from notifier.domain.delivery import alert_payload, email_text, encode_body, one_line, webhook_body

AT = datetime(2026, 11, 11, 8, 30, tzinfo=UTC)
SENT = datetime(2026, 11, 11, 8, 31, tzinfo=UTC)
ALERT = {
    "id": uuid.UUID(int=1),
    "event_type": "StockLow",
    "alert_type": "stock_low",
    "severity": "warning",
    "subject": "S-1",
    "message": "S-1 in WH-SH: available 2 below safety stock 5",
    "details": {"sku": "S-1", "warehouse": "WH-SH", "note": None},
    "channel": None,
    "warehouse": "WH-SH",
    "raised_at": AT,
    "internal": "not sent",
}
#: What deliveries carry of ALERT: its public fields, the id and time as text.
PAYLOAD = {k: v for k, v in ALERT.items() if k != "internal"} | {
    "id": str(uuid.UUID(int=1)),
    "raised_at": AT.isoformat(),
}


def test_an_alerts_payload_is_its_public_fields_json_ready() -> None:
    assert alert_payload(ALERT) == PAYLOAD
    sparse = {k: v for k, v in ALERT.items() if k not in {"event_type", "details", "channel"}}
    got = alert_payload({**sparse, "raised_at": "2026-11-11", "warehouse": None})
    assert (got["event_type"], got["details"], got["channel"], got["raised_at"]) == (
        None,
        {},
        None,
        "2026-11-11",
    )


def test_one_alert_by_webhook_and_by_mail() -> None:
    body = webhook_body(delivery_id="d-1", sent_at=SENT, alert=ALERT)
    assert body == {
        "delivery_id": "d-1",
        "sent_at": SENT.isoformat(),
        "kind": "alert",
        "alert": PAYLOAD,
    }
    subject, text = email_text(body)
    assert subject == "[OMS warning] stock_low: S-1"
    assert text == (
        "S-1 in WH-SH: available 2 below safety stock 5\n"
        "\n"
        f"raised at {AT.isoformat()}\n"
        f"alert id {uuid.UUID(int=1)}\n"
        "sku: S-1\n"
        "warehouse: WH-SH\n"
        "\n"
        "delivery d-1\n"
    )


def test_a_digest_by_webhook_and_by_mail() -> None:
    second = {**ALERT, "id": uuid.UUID(int=2), "severity": "critical", "message": "again"}
    digest = {"id": uuid.UUID(int=9), "alert_type": "stock_low", "window_start": AT}
    body = webhook_body(
        delivery_id="d-2", sent_at=SENT, digest=digest, digest_alerts=[ALERT, second]
    )
    assert body == {
        "delivery_id": "d-2",
        "sent_at": SENT.isoformat(),
        "kind": "digest",
        "digest": {
            "id": str(uuid.UUID(int=9)),
            "alert_type": "stock_low",
            "window_start": AT.isoformat(),
            "count": 2,
            "alerts": [PAYLOAD, alert_payload(second)],
        },
    }
    subject, text = email_text(body)
    assert subject == f"[OMS digest] 2 x stock_low since {AT.isoformat()}"
    assert text == (
        "2 alerts of type stock_low in one minute:\n"
        "\n"
        f"- [warning] S-1 in WH-SH: available 2 below safety stock 5 (alert {uuid.UUID(int=1)})\n"
        f"- [critical] again (alert {uuid.UUID(int=2)})\n"
        "\n"
        "delivery d-2\n"
    )
    empty = webhook_body(delivery_id="d-3", sent_at=SENT, digest=digest)
    assert empty["digest"]["count"] == 0 and empty["digest"]["alerts"] == []


def test_a_subject_is_one_bounded_line_and_the_body_bytes_are_canonical() -> None:
    assert one_line("a\r\nb\tc") == "a  b c"
    assert one_line("x" * 300) == "x" * 200
    assert one_line("abcdef", limit=3) == "abc"
    assert (
        encode_body({"b": 1, "a": "é", "t": AT})
        == ('{"a":"\\u00e9","b":1,"t":"' + str(AT) + '"}').encode()
    )
