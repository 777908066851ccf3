"""Masking personal data for answers and forwarded text: one set of rules for every service.

A caller without ``customers:pii`` still needs to recognise a customer (the last digits of
a phone, the mail domain, the city), never to contact or locate one: phones keep their
first three and last four characters, e-mails their first letter and domain, names and
street lines their first letter; region and city are not personal and stay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Keys whose values are personal wherever they appear in a payload or an answer.
_PHONE_KEYS = frozenset({"phone", "mobile"})
_EMAIL_KEYS = frozenset({"email", "e_mail"})
_TEXT_KEYS = frozenset({"name", "line1", "line2", "postal_code", "display_name", "tax_id"})
#: Objects whose names, street lines and postcodes are a person's (any key ending in
#: "address" too).
_PERSONAL_CONTAINERS = frozenset(
    {"customer", "customers", "addresses", "invoice", "contact", "identity", "profile"}
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d ()-]{6,}\d")


def mask_phone(value: str | None) -> str | None:
    if not value:
        return value
    return value[:3] + "*" * max(len(value) - 7, 0) + value[-4:] if len(value) > 7 else "***"


def mask_email(value: str | None) -> str | None:
    if not value or "@" not in value:
        return None if value is None else "***"
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_text(value: str | None) -> str | None:
    if not value:
        return value
    return value[:1] + "***"


_MASKED_ADDRESS_FIELDS = ("line1", "postal_code", "phone", "name")


def mask_address(address: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Region and city stay (they are not personal); street, postcode, phone do not."""
    if address is None:
        return None
    out = dict(address)
    for key in _MASKED_ADDRESS_FIELDS:
        if out.get(key):
            out[key] = mask_phone(out[key]) if key == "phone" else mask_text(out[key])
    return out


def mask_personal_fields(value: Any, *, personal: bool = False) -> Any:
    """A copy of a JSON-like ``value`` with every personal field masked, at any depth
    (an event payload, an order with its customer and shipping address).

    Phones and e-mails are masked wherever they are; names, street lines and postcodes
    only inside a customer, an address or an invoice (a line's product ``name`` stays).
    """
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, str) and key in _PHONE_KEYS:
                out[key] = mask_phone(item)
            elif isinstance(item, str) and key in _EMAIL_KEYS:
                out[key] = mask_email(item)
            elif isinstance(item, str) and personal and key in _TEXT_KEYS:
                out[key] = mask_text(item)
            else:
                inner = personal or key in _PERSONAL_CONTAINERS or key.endswith("address")
                out[key] = mask_personal_fields(item, personal=inner)
        return out
    if isinstance(value, list):
        return [mask_personal_fields(item, personal=personal) for item in value]
    return value


def _keep_last(value: str, keep: int = 2) -> str:
    return "*" * max(len(value) - keep, 0) + value[-keep:]


def scrub(text: str | None) -> str | None:
    """``text`` with e-mail addresses and phone numbers masked (last two characters kept).

    Other services' free text (an exception's detail, a foreign alert's message) may
    quote a customer; an alert is forwarded to places personal data must not go.
    """
    if text is None:
        return None
    text = _EMAIL.sub(lambda m: _keep_last(m.group(0)), text)
    return _PHONE.sub(lambda m: _keep_last(m.group(0)), text)
