"""The identity rules, on plain objects (no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from customer_svc.domain.identity import (
    ChannelIdentity,
    ContactMatch,
    default_region,
    normalize_email,
    normalize_name,
    normalize_phone,
    resolve,
    set_default_region,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        # The default region (CN) reads numbers without a country code.
        ("138 0000 0001", "+8613800000001"),
        ("+86 138-0000-0001", "+8613800000001"),
        ("(+86) 138.0000.0001", "+8613800000001"),
        ("\t13800000001\n", "+8613800000001"),
        ("+66 81-234-5678", "+66812345678"),
        ("(+66) 81-234-5678", "+66812345678"),
        ("  +1 (415) 555-0100 ", "+14155550100"),
        ("+44 20 7946 0000", "+442079460000"),
    ],
)
def test_phone_is_e164_in_the_default_region(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


def test_national_numbers_follow_the_region() -> None:
    assert normalize_phone("081 234 5678", "TH") == "+66812345678"
    assert normalize_phone("(415) 555-0100", "US") == "+14155550100"


def test_the_default_region_is_a_setting() -> None:
    assert default_region() == "CN"
    set_default_region("th")
    try:
        assert normalize_phone("081 234 5678") == "+66812345678"
    finally:
        set_default_region("CN")
    with pytest.raises(ValueError):
        set_default_region("XX")


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "12345",
        "0",
        "+",
        "1234567890123456",
        "08-1234-abcd",
        "1-800-FLOWERS",
        "081+2345678",
        "++66812345",
        "+86 000 0000 0000",
    ],
)
def test_phone_that_cannot_be_one_is_none(raw: str | None) -> None:
    assert normalize_phone(raw) is None


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("  Alice@Example.COM ", "alice@example.com"),
        ("bob@shop.co.th", "bob@shop.co.th"),
    ],
)
def test_email_is_lowercased_and_stripped(raw: str, canonical: str) -> None:
    assert normalize_email(raw) == canonical


@pytest.mark.parametrize("raw", [None, "", "  ", "not-an-email", "a@b@c", "a b@c.d", "@x.y", "x@"])
def test_email_that_cannot_be_one_is_none(raw: str | None) -> None:
    assert normalize_email(raw) is None


def test_name_whitespace_is_collapsed() -> None:
    assert normalize_name("  Somchai   Jaidee ") == "Somchai Jaidee"
    assert normalize_name("   ") is None
    assert normalize_name(None) is None


def test_channel_identity_normalizes_all_contact_data() -> None:
    ident = ChannelIdentity("line", "U1", " Ann ", "+66 81 234 5678", "ANN@X.COM ").normalized()
    assert (ident.channel, ident.platform_user_id) == ("line", "U1")
    assert (ident.name, ident.phone, ident.email) == ("Ann", "+66812345678", "ann@x.com")


def test_exact_platform_identity_wins_over_everything() -> None:
    linked, other = uuid.uuid4(), uuid.uuid4()
    decision = resolve(linked, [ContactMatch(other, T0, "phone"), ContactMatch(other, T0, "email")])
    assert decision.matched_by == "platform_id"
    assert decision.customer_id == linked
    assert not decision.is_new


def test_phone_match_links_to_that_customer() -> None:
    customer = uuid.uuid4()
    decision = resolve(None, [ContactMatch(customer, T0, "phone")])
    assert (decision.matched_by, decision.customer_id) == ("phone", customer)


def test_email_match_links_to_that_customer() -> None:
    customer = uuid.uuid4()
    decision = resolve(None, [ContactMatch(customer, T0, "email")])
    assert (decision.matched_by, decision.customer_id) == ("email", customer)


def test_phone_takes_precedence_over_email() -> None:
    by_email, by_phone = uuid.uuid4(), uuid.uuid4()
    decision = resolve(
        None,
        [
            ContactMatch(by_email, T0 - timedelta(days=1), "email"),
            ContactMatch(by_phone, T0, "phone"),
        ],
    )
    assert (decision.matched_by, decision.customer_id) == ("phone", by_phone)


def test_among_several_matches_the_oldest_customer_wins() -> None:
    old, young = uuid.uuid4(), uuid.uuid4()
    matches = [
        ContactMatch(young, T0, "phone"),
        ContactMatch(old, T0 - timedelta(hours=1), "phone"),
    ]
    assert resolve(None, matches).customer_id == old
    assert resolve(None, list(reversed(matches))).customer_id == old


def test_same_age_ties_are_broken_by_id_deterministically() -> None:
    a, b = sorted([uuid.uuid4(), uuid.uuid4()], key=str)
    assert (
        resolve(None, [ContactMatch(b, T0, "email"), ContactMatch(a, T0, "email")]).customer_id == a
    )


def test_no_match_is_a_new_customer() -> None:
    decision = resolve(None, [])
    assert decision.is_new
    assert decision.matched_by == "new"
    assert decision.customer_id is None
