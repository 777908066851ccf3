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
from typing import Literal

MatchedBy = Literal["platform_id", "phone", "email", "new"]
ContactKind = Literal["phone", "email"]
#: Contact data in order of precedence when matching.
_CONTACT_PRECEDENCE: tuple[ContactKind, ...] = ("phone", "email")

#: Characters people and channels put in phone numbers that carry no meaning.
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
#: A canonical phone: an optional leading "+" and 6 to 15 digits (E.164 allows 15).
#: Shorter strings are not matched on: merging two people over "0" would be worse than
#: creating a duplicate customer.
_CANONICAL_PHONE = re.compile(r"^\+?\d{6,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def normalize_phone(raw: str | None) -> str | None:
    """The canonical form of a phone number, or None if it cannot be one.

    Digits with a leading ``+`` kept; spaces, dashes, dots and parentheses stripped.
    (Full E.164 with country inference via ``phonenumbers`` comes later.)
    """
    if raw is None:
        return None
    phone = _PHONE_SEPARATORS.sub("", raw)
    return phone if _CANONICAL_PHONE.match(phone) else None


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
