"""The generic webhook signature, with plain values."""

from __future__ import annotations

import pytest

from channel_gateway.domain.signature import SignatureError, sign, verify

BODY = b'{"channel_order_id": "T-1"}'
NOW = 1_800_000_000


def test_a_fresh_correct_signature_verifies() -> None:
    assert (
        verify("s3cret-key", sign("s3cret-key", NOW, BODY), BODY, now=NOW + 10, tolerance_s=300)
        == NOW
    )


@pytest.mark.parametrize(
    ("header", "body", "now", "message"),
    [
        (None, BODY, NOW, "missing"),
        ("garbage", BODY, NOW, "malformed"),
        (sign("other-secret", NOW, BODY), BODY, NOW, "does not match"),
        (sign("s3cret-key", NOW, BODY), BODY + b" ", NOW, "does not match"),  # tampered byte
        (
            sign("s3cret-key", NOW, BODY).replace(f"t={NOW}", f"t={NOW + 1}"),
            BODY,
            NOW,
            "does not match",
        ),
        (sign("s3cret-key", NOW, BODY), BODY, NOW + 301, "window"),  # replayed later
    ],
)
def test_bad_missing_tampered_or_stale_signatures_are_refused(
    header: str | None, body: bytes, now: int, message: str
) -> None:
    with pytest.raises(SignatureError, match=message):
        verify("s3cret-key", header, body, now=now, tolerance_s=300)
