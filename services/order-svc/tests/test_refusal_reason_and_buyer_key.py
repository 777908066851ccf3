"""The exception queue's reason for a stock refusal and the buyer key inventory counts
by, as plain objects: exact texts and exact keys."""

from __future__ import annotations

import hashlib

from oms_contracts.events import RejectedLine
from order_svc.domain.buyer import KEY_LENGTH, buyer_key
from order_svc.domain.stock_refusal import refusal_reason


def line(sku: str, reason: str, qty: int = 2, available: int | None = None) -> RejectedLine:
    return RejectedLine(line_no=1, sku=sku, qty=qty, reason=reason, available=available)  # type: ignore[arg-type]


def test_a_refusal_without_a_customer_cap_is_stock_rejected_line_by_line() -> None:
    lines = [line("SKU-1", "insufficient"), line("SKU-2", "channel_cap")]
    assert refusal_reason(lines) == "stock_rejected (SKU-1: insufficient, SKU-2: channel_cap)"


def test_a_line_over_the_customers_cap_makes_it_customer_limit_whatever_the_others_say() -> None:
    lines = [line("SKU-1", "insufficient"), line("SKU-2", "customer_limit", 3, 0)]
    assert refusal_reason(lines) == (
        "customer_limit (SKU-1: insufficient, SKU-2: 3 asked, this customer may take 0 more)"
    )
    unknown = refusal_reason([line("SKU-3", "customer_limit", 1, None)])
    assert unknown == "customer_limit (SKU-3: 1 asked, this customer may take ? more)"


def test_the_buyer_key_is_a_hash_of_channel_and_account_cut_to_128_bits() -> None:
    full = hashlib.sha256(b"tmall:u-42").hexdigest()
    assert KEY_LENGTH == 32
    assert buyer_key("tmall", "u-42") == full[:32]
    assert buyer_key("web", "u-42") != buyer_key("tmall", "u-42")
