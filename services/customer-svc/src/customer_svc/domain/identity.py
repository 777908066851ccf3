"""Identity normalization and the resolution rule: which customer a channel identity is.

Pure logic over plain objects. The repository gathers what the database knows (the
customer already linked to the exact channel identity, and customers sharing its phone
or e-mail); :func:`resolve` decides. The unique (channel, platform_user_id) constraint in
the database is what finally guarantees one customer per channel identity when two
resolutions race.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import phonenumbers

MatchedBy = Literal["platform_id", "phone", "email", "new"]
ContactKind = Literal["phone", "email"]
#: Contact data in order of precedence when matching.
_CONTACT_PRECEDENCE: tuple[ContactKind, ...] = ("phone", "email")

#: The region assumed for numbers written without a country code (a setting of the
#: service: ``default_phone_region``; see :func:`set_default_region`).
DEFAULT_PHONE_REGION = "CN"
_region = DEFAULT_PHONE_REGION
#: What a written phone number may contain: an optional leading "+", digits, and the
#: separators people use. Letters are refused (phonenumbers would read them as keypad
#: digits).
_PHONE_CHARS = re.compile(r"^\s*\(?\+?[\d\s\-().]*\d[\d\s\-().]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def set_default_region(region: str) -> None:
    """The region national-format phone numbers are read in (ISO 3166 alpha-2)."""
    global _region
    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {region!r}")
    _region = region.upper()


def default_region() -> str:
    return _region


def normalize_phone(raw: str | None, region: str | None = None) -> str | None:
    """The E.164 form of a phone number, or None if it cannot be one.

    Parsed with ``phonenumbers``; a number without a country code is read in the
    default region, so "138 0000 0001" and "+86 138-0000-0001" are the same number in
    CN. Numbers that are not valid for their region (too short, unknown prefix, letters)
    are None: merging two people over "0" would be worse than a duplicate customer.
    """
    if raw is None or not _PHONE_CHARS.match(raw):
        return None
    try:
        number = phonenumbers.parse(raw, region or _region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str | None) -> str | None:
    """The e-mail address lower-cased and stripped, or None if it is not one."""
    if raw is None:
        return None
    email = raw.strip().lower()
    return email if _EMAIL.match(email) else None


def normalize_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = " ".join(raw.split())
    return name or None


@dataclass(frozen=True)
class ChannelIdentity:
    """Who someone is on one channel, as that channel told us (raw values)."""

    channel: str
    platform_user_id: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    #: The shipping address the identity came with (canonical Address fields), if any.
    address: dict[str, Any] | None = None

    def normalized(self) -> NormalizedIdentity:
        return NormalizedIdentity(
            channel=self.channel,
            platform_user_id=self.platform_user_id,
            name=normalize_name(self.name),
            phone=normalize_phone(self.phone),
            email=normalize_email(self.email),
        )


@dataclass(frozen=True)
class NormalizedIdentity:
    """A channel identity with its contact data in canonical form (None: unusable)."""

    channel: str
    platform_user_id: str
    name: str | None
    phone: str | None
    email: str | None


@dataclass(frozen=True)
class ContactMatch:
    """An existing customer that shares the identity's phone or e-mail."""

    customer_id: uuid.UUID
    customer_created_at: datetime
    by: ContactKind


@dataclass(frozen=True)
class Resolution:
    """The decision: an existing customer (and how it was found), or a new one."""

    matched_by: MatchedBy
    customer_id: uuid.UUID | None = None

    @property
    def is_new(self) -> bool:
        return self.matched_by == "new"


def resolve(linked_customer: uuid.UUID | None, matches: Iterable[ContactMatch]) -> Resolution:
    """Decide which customer an identity belongs to.

    1. The customer already linked to this exact (channel, platform_user_id).
    2. Else a customer with the same normalized phone, then one with the same e-mail
       (phone wins over e-mail; among several, the oldest customer, so every replica
       picks the same one).
    3. Else a new customer.
    """
    if linked_customer is not None:
        return Resolution("platform_id", linked_customer)
    matches = list(matches)
    for by in _CONTACT_PRECEDENCE:
        found = sorted(
            (m for m in matches if m.by == by),
            key=lambda m: (m.customer_created_at, str(m.customer_id)),
        )
        if found:
            return Resolution(by, found[0].customer_id)
    return Resolution("new")
