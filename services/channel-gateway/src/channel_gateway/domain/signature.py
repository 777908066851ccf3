"""The `generic` channel's webhook signature.

``X-OMS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``. The
timestamp is inside the signed text, so it cannot be changed to replay an old delivery,
and deliveries outside the tolerance window are refused. Verification runs over the raw
bytes (never re-serialized JSON) and compares in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass


class SignatureError(Exception):
    """The delivery is not authentic or not fresh; the reason is safe to return."""


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value a sender puts on ``body`` (used by tests, demos and partners)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def parse_header(value: str | None) -> SignatureHeader:
    if not value:
        raise SignatureError("missing X-OMS-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        name, _, item = part.strip().partition("=")
        if name == "t" and item.isdigit():
            timestamp = int(item)
        elif name == "v1" and item:
            signatures.append(item.lower())
    if timestamp is None or not signatures:
        raise SignatureError("malformed X-OMS-Signature header")
    return SignatureHeader(timestamp, tuple(signatures))


def verify(
    secret: str, header_value: str | None, body: bytes, *, now: int, tolerance_s: int
) -> int:
    """Check authenticity and freshness; returns the signed timestamp."""
    header = parse_header(header_value)
    expected = _digest(secret, header.timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in header.signatures):
        raise SignatureError("signature does not match")
    if abs(now - header.timestamp) > tolerance_s:
        raise SignatureError("signature timestamp outside the allowed window (replay?)")
    return header.timestamp


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def platform_signature(secret: str, body: bytes) -> str:
    """Shopify's and WooCommerce's signature: base64(HMAC-SHA256(secret, raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_platform(secret: str, header_value: str | None, body: bytes, *, header: str) -> None:
    """Check a base64 HMAC-SHA256 over the raw body, in constant time."""
    if not header_value:
        raise SignatureError(f"missing {header} header")
    expected = platform_signature(secret, body)
    if not hmac.compare_digest(expected.encode(), header_value.strip().encode()):
        raise SignatureError("signature does not match")
