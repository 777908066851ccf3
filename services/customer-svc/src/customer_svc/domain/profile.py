"""Profile rules: delivery requirements and invoice details, what events announce, and
masking of personal data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from customer_svc.domain.tagging import COLD_CHAIN_TAG

DELIVERY_FLAGS = ("cold_chain", "fragile", "signature")


def requirement_list(delivery: Mapping[str, Any] | None, tags: Iterable[str]) -> list[str]:
    """The delivery requirements announced in ``CustomerUpdated``: every flag set, plus
    ``cold_chain`` when the customer is tagged cold-chain sensitive."""
    delivery = delivery or {}
    out = {flag for flag in DELIVERY_FLAGS if delivery.get(flag)}
    if COLD_CHAIN_TAG in set(tags):
        out.add("cold_chain")
    return sorted(out)


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


def missing_required(profile: Mapping[str, Any], required: Iterable[str]) -> str | None:
    """The first field a channel policy requires that the profile lacks (dotted path)."""
    for path in required:
        value: Any = profile
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value in (None, "", [], {}):
            return path
    return None
