"""Two lines of one order with the same line number are refused with a 422 naming the
number (found by the API fuzzer: they collided in storage and answered 500)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from order_svc.api.schemas import NewOrderIn


def order(*line_numbers: int) -> dict[str, object]:
    return {
        "customer": {"platform_user_id": "u-1"},
        "lines": [
            {"line_no": n, "sku": f"SKU-{i}", "qty": 1, "unit_price": "1.00"}
            for i, n in enumerate(line_numbers)
        ],
        "currency": "CNY",
        "shipping_address": {"region": "CN-SH", "city": "Shanghai"},
    }


def test_distinct_line_numbers_are_accepted() -> None:
    assert [line.line_no for line in NewOrderIn.model_validate(order(1, 2, 7)).lines] == [1, 2, 7]


def test_a_line_number_used_twice_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError) as refused:
        NewOrderIn.model_validate(order(1, 2, 1))
    (error,) = refused.value.errors()
    assert error["loc"] == ("lines",)
    assert "line_no 1 is used by more than one line" in error["msg"]
