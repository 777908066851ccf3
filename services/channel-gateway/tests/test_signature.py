"""The generic webhook signature, with plain values."""

from __future__ import annotations

import pytest

from channel_gateway.domain.signature import (
    SignatureError,
    SignatureHeader,
    parse_header,
    platform_signature,
    sign,
    verify,
    verify_platform,
)

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


def test_a_header_may_carry_unknown_fields_and_several_signatures() -> None:
    """Other schemes (``v0``), unknown fields and upper-case hex are tolerated, so a
    sender can add fields or sign with an old and a new secret during a rotation."""
    assert parse_header(f" t={NOW} , x=7, v0=abc, v1=ABC1, v1=def2") == SignatureHeader(
        NOW, ("abc1", "def2")
    )
    old = sign("old-secret", NOW, BODY).split(",")[1]
    new = sign("s3cret-key", NOW, BODY).split(",")[1].removeprefix("v1=").upper()
    header = f"t={NOW},scheme=2,{old},v1={new}"
    assert verify("s3cret-key", header, BODY, now=NOW, tolerance_s=300) == NOW


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing X-OMS-Signature header"),
        ("", "missing X-OMS-Signature header"),
        (f"t={NOW}", "malformed X-OMS-Signature header"),  # no signature
        ("v1=" + "0" * 64, "malformed X-OMS-Signature header"),  # no time
        ("t=soon,v1=" + "0" * 64, "malformed X-OMS-Signature header"),
        (f"t={NOW},v1=", "malformed X-OMS-Signature header"),
        (sign("other-secret", NOW, BODY), "signature does not match"),
    ],
)
def test_the_sender_is_told_why_its_signature_was_refused(header: str | None, reason: str) -> None:
    """The reason goes back to the sender in the 401 and into the delivery log."""
    with pytest.raises(SignatureError) as refused:
        verify("s3cret-key", header, BODY, now=NOW, tolerance_s=300)
    assert str(refused.value) == reason


def test_the_window_includes_its_tolerance_on_both_sides() -> None:
    header = sign("s3cret-key", NOW, BODY)
    for now in (NOW - 300, NOW + 300):
        assert verify("s3cret-key", header, BODY, now=now, tolerance_s=300) == NOW
    for now in (NOW - 301, NOW + 301):
        with pytest.raises(SignatureError) as refused:
            verify("s3cret-key", header, BODY, now=now, tolerance_s=300)
        assert str(refused.value) == "signature timestamp outside the allowed window (replay?)"


#: base64(HMAC-SHA256(key "hush", body ``{"id": 1}``)), as Shopify and WooCommerce send it.
PLATFORM_BODY = b'{"id": 1}'
PLATFORM_SIGNATURE = "E9XxLgppVNX12rqWuu0/CN/43MeuZC0xdhRuMq1MPWg="


def test_platform_signatures_are_base64_hmac_sha256_of_the_raw_body() -> None:
    assert platform_signature("hush", PLATFORM_BODY) == PLATFORM_SIGNATURE
    header = "X-Shopify-Hmac-Sha256"
    verify_platform("hush", f" {PLATFORM_SIGNATURE}\n", PLATFORM_BODY, header=header)  # passes
    refusals = [
        ("hush", None, PLATFORM_BODY, "missing X-Shopify-Hmac-Sha256 header"),
        ("hush", "", PLATFORM_BODY, "missing X-Shopify-Hmac-Sha256 header"),
        ("other", PLATFORM_SIGNATURE, PLATFORM_BODY, "signature does not match"),
        ("hush", PLATFORM_SIGNATURE, b'{"id": 2}', "signature does not match"),
        ("hush", PLATFORM_SIGNATURE.lower(), PLATFORM_BODY, "signature does not match"),
    ]
    for secret, value, body, reason in refusals:
        with pytest.raises(SignatureError) as refused:
            verify_platform(secret, value, body, header=header)
        assert str(refused.value) == reason
