"""Webhook signatures, and a shell recipe that produces the same ones.

The gateway accepts ``X-OMS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw
body>">`` only within a five-minute window, so a printed example cannot carry a fixed
signature: the recipe computes it in the shell at the moment it is pasted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shlex
import time
from datetime import UTC, datetime

SIGNATURE_HEADER = "X-OMS-Signature"
DEFAULT_DEMO_SECRET = "demo-secret"


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value ``t=...,v1=...`` for ``body`` signed with ``secret``."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def demo_order(paid_at: datetime | None = None, channel_order_id: str = "DEMO-1001") -> str:
    """A valid web-channel order as one line of JSON (no single quotes, so shell-safe)."""
    paid = (paid_at or datetime.now(UTC)).replace(microsecond=0).isoformat()
    order = {
        "channel_order_id": channel_order_id,
        "customer": {
            "platform_user_id": "u1",
            "name": "Li Lei",
            "phone": "+8613800000001",
            "email": "li@example.com",
        },
        "lines": [{"sku": "SKU-1", "qty": 2, "unit_price": "19.90"}],
        "currency": "CNY",
        "paid": True,
        "paid_at": paid,
        "shipping_address": {
            "name": "Li Lei",
            "phone": "+8613800000001",
            "region": "CN-SH",
            "city": "Shanghai",
            "line1": "1 Demo Road",
            "postal_code": "200000",
        },
        "delivery_requirements": [],
        "notes": "leave at door",
        "priority": "normal",
    }
    return json.dumps(order)


def shell_signature_command(secret: str) -> str:
    """Shell that prints the hex HMAC of ``"$TS.$BODY"`` (``TS``/``BODY`` set beforehand).

    ``printf '%s.%s'`` adds no trailing newline, and ``sed`` strips openssl's ``(stdin)= ``
    prefix, which differs between openssl versions.
    """
    return (
        f'printf \'%s.%s\' "$TS" "$BODY" | openssl dgst -sha256 -hmac {shlex.quote(secret)}'
        " | sed 's/^.* //'"
    )


def shell_webhook_example(webhook_url: str, secret: str, body: str) -> str:
    """Copy-paste shell that posts ``body`` to ``webhook_url`` with a fresh signature."""
    return "\n".join(
        [
            f"BODY={shlex.quote(body)}",
            "TS=$(date +%s)",
            f"SIG=$({shell_signature_command(secret)})",
            f"curl -sS -X POST {webhook_url} -H 'Content-Type: application/json' "
            f'-H "{SIGNATURE_HEADER}: t=$TS,v1=$SIG" -d "$BODY"',
        ]
    )
