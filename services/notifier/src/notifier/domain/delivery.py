"""How a delivery is signed, retried and grouped. Pure logic, no I/O.

- Signing: ``X-OMS-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``. The body
  carries the delivery id and the send time, so the signature covers them too and a
  receiver can refuse replays (same delivery id) and stale bodies (old ``sent_at``).
- Retries: exponential backoff with jitter, from ``base`` doubling up to ``cap``; after
  ``give_up_at`` (24 h after the delivery was planned, by default) a failed attempt is
  the last and the delivery is ``failed``.
- Digests: per subscription, alert type and minute, the first ``threshold`` alerts go out
  one by one; the rest of that minute go out together in one digest at its end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

SIGNATURE_HEADER = "X-OMS-Signature"
TIMESTAMP_HEADER = "X-OMS-Timestamp"
DELIVERY_ID_HEADER = "X-OMS-Delivery-Id"
EVENT_HEADER = "X-OMS-Event"

DeliveryState = Literal["pending", "in_flight", "delivered", "failed", "cancelled"]
#: What GET /alerts says of all an alert's deliveries together.
Summary = Literal["none", "pending", "delivered", "failed", "cancelled"]


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, body)>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is ours over ``body`` (constant-time; what receivers do)."""
    if not secret or not signature:
        return False
    return hmac.compare_digest(sign(secret, body), signature.strip())


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed (compact, keys sorted, UTF-8)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 2.0
    cap_s: float = 600.0
    max_age_s: float = 24 * 3600.0


def backoff(attempts: int, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones ("equal jitter":
    half the exponential step fixed, half random, so retries of many deliveries to one
    recovering target spread out)."""
    step = min(policy.cap_s, policy.base_s * 2.0 ** max(attempts - 1, 0))
    return float(step / 2 + step / 2 * rand())


@dataclass(frozen=True)
class AttemptOutcome:
    """What to write after an attempt."""

    state: DeliveryState
    next_attempt_at: datetime | None


def after_attempt(
    *,
    ok: bool,
    attempts: int,
    now: datetime,
    give_up_at: datetime,
    policy: RetryPolicy,
    permanent: bool = False,
    rand: Callable[[], float] = random.random,
) -> AttemptOutcome:
    """Delivered, or the next attempt's time, or failed (past ``give_up_at`` or refused
    for good, e.g. a target that now resolves to a forbidden address)."""
    if ok:
        return AttemptOutcome("delivered", None)
    if permanent:
        return AttemptOutcome("failed", None)
    next_at = now + timedelta(seconds=backoff(attempts, policy, rand))
    if now >= give_up_at:
        return AttemptOutcome("failed", None)
    return AttemptOutcome("pending", min(next_at, give_up_at))


def digest_due(window_start: datetime, window_s: float = 60.0, grace_s: float = 2.0) -> datetime:
    """When a minute's digest is sent: at the end of its window, plus a grace for alerts
    whose transactions started inside the window and commit just after it."""
    return window_start + timedelta(seconds=window_s + grace_s)


def goes_to_digest(alerts_in_window: int, threshold: int) -> bool:
    """Whether the ``alerts_in_window``-th alert (1-based) of a minute is grouped."""
    return alerts_in_window > threshold


def summarize(states: list[str]) -> Summary:
    """One state for an alert's deliveries: pending while any is under way, then failed
    if any failed, then delivered if any was delivered."""
    if not states:
        return "none"
    if any(s in ("pending", "in_flight") for s in states):
        return "pending"
    if "failed" in states:
        return "failed"
    if "delivered" in states:
        return "delivered"
    return "cancelled"


def alert_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert as deliveries carry it (the stored row's public fields, JSON-ready)."""
    return {
        "id": str(alert["id"]),
        "event_type": alert.get("event_type"),
        "alert_type": alert["alert_type"],
        "severity": alert["severity"],
        "subject": alert["subject"],
        "message": alert["message"],
        "details": alert.get("details") or {},
        "channel": alert.get("channel"),
        "warehouse": alert.get("warehouse"),
        "raised_at": _iso(alert["raised_at"]),
    }


def webhook_body(
    *,
    delivery_id: str,
    sent_at: datetime,
    alert: dict[str, Any] | None = None,
    digest: dict[str, Any] | None = None,
    digest_alerts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON a webhook receives: one alert, or a digest of several."""
    body: dict[str, Any] = {"delivery_id": delivery_id, "sent_at": sent_at.isoformat()}
    if alert is not None:
        body["kind"] = "alert"
        body["alert"] = alert_payload(alert)
    else:
        assert digest is not None
        items = [alert_payload(a) for a in digest_alerts or []]
        body["kind"] = "digest"
        body["digest"] = {
            "id": str(digest["id"]),
            "alert_type": digest["alert_type"],
            "window_start": _iso(digest["window_start"]),
            "count": len(items),
            "alerts": items,
        }
    return body


def email_text(body: dict[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body of the e-mail for a webhook-shaped ``body``."""
    if body["kind"] == "alert":
        a = body["alert"]
        subject = f"[OMS {a['severity']}] {a['alert_type']}: {a['subject']}"
        lines = [a["message"], "", f"raised at {a['raised_at']}", f"alert id {a['id']}"]
        lines += [f"{k}: {v}" for k, v in sorted(a["details"].items()) if v is not None]
    else:
        d = body["digest"]
        subject = f"[OMS digest] {d['count']} x {d['alert_type']} since {d['window_start']}"
        lines = [f"{d['count']} alerts of type {d['alert_type']} in one minute:", ""]
        lines += [f"- [{a['severity']}] {a['message']} (alert {a['id']})" for a in d["alerts"]]
    lines += ["", f"delivery {body['delivery_id']}"]
    return one_line(subject), "\n".join(lines) + "\n"


def one_line(text: str, limit: int = 200) -> str:
    """``text`` fit for a mail header: no line breaks or control characters, bounded."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned[:limit]


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
