"""Profile rules: delivery requirements and invoice details, what events announce, and
masking of personal data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from customer_svc.domain.tagging import COLD_CHAIN_TAG
from oms_servicekit.personal_data import mask_address, mask_email, mask_phone, mask_text

__all__ = [
    "DELIVERY_FLAGS",
    "mask_address",
    "mask_email",
    "mask_phone",
    "mask_text",
    "missing_required",
    "requirement_list",
]

DELIVERY_FLAGS = ("cold_chain", "fragile", "signature")


def requirement_list(delivery: Mapping[str, Any] | None, tags: Iterable[str]) -> list[str]:
    """The delivery requirements announced in ``CustomerUpdated``: every flag set, plus
    ``cold_chain`` when the customer is tagged cold-chain sensitive."""
    delivery = delivery or {}
    out = {flag for flag in DELIVERY_FLAGS if delivery.get(flag)}
    if COLD_CHAIN_TAG in set(tags):
        out.add("cold_chain")
    return sorted(out)


def missing_required(profile: Mapping[str, Any], required: Iterable[str]) -> str | None:
    """The first field a channel policy requires that the profile lacks (dotted path)."""
    for path in required:
        value: Any = profile
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value in (None, "", [], {}):
            return path
    return None
