"""What an order-exception alert says, on plain objects."""

from __future__ import annotations

from notifier.domain.alerts import LineRejection, rejection_reasons, stock_rejection_message


def test_message_lists_each_rejected_line_in_line_order() -> None:
    lines = [
        LineRejection(2, "SKU-B", 1, "unknown_sku"),
        LineRejection(1, "SKU-A", 3, "insufficient", available=1),
    ]
    assert stock_rejection_message(lines) == (
        "stock rejected: line 1 SKU-A x3: insufficient (available 1); line 2 SKU-B x1: unknown_sku"
    )


def test_available_zero_is_still_said() -> None:
    message = stock_rejection_message([LineRejection(1, "S", 2, "insufficient", 0)])
    assert message == "stock rejected: line 1 S x2: insufficient (available 0)"


def test_message_without_lines() -> None:
    assert stock_rejection_message([]) == "stock rejected: no reason given"


def test_reasons_are_distinct_and_sorted() -> None:
    lines = [
        LineRejection(1, "A", 1, "insufficient"),
        LineRejection(2, "B", 1, "channel_cap"),
        LineRejection(3, "C", 1, "insufficient"),
    ]
    assert rejection_reasons(lines) == ["channel_cap", "insufficient"]
