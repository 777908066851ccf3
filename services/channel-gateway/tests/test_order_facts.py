"""What a delivery says that the gateway had not heard yet (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from channel_gateway.domain.order_facts import Delivery, HeardBefore, changes, is_stale

T0 = datetime(2026, 11, 11, tzinfo=UTC)
LINES = [{"line_no": 1, "sku": "SKU-1", "qty": 1, "unit_price": "10.00", "warehouse": None}]
ADDRESS = {"region": "CN-SH", "city": "Shanghai", "line1": None}


def heard(**kw: Any) -> HeardBefore:
    values: dict[str, Any] = {
        "paid": False,
        "cancelled": False,
        "lines": LINES,
        "shipping_address": ADDRESS,
        "channel_updated_at": T0,
    }
    return HeardBefore(**(values | kw))


def delivery(**kw: Any) -> Delivery:
    values: dict[str, Any] = {
        "paid": False,
        "cancelled": False,
        "lines": LINES,
        "shipping_address": ADDRESS,
        "channel_updated_at": T0,
    }
    return Delivery(**(values | kw))


def test_the_same_order_again_says_nothing_new() -> None:
    assert changes(heard(), delivery()) == []
    same_price = [LINES[0] | {"unit_price": "10"}]  # 10 == 10.00
    assert changes(heard(), delivery(lines=same_price)) == []


def test_payment_and_cancellation_are_one_way() -> None:
    assert changes(heard(), delivery(paid=True, cancelled=True)) == ["paid", "cancelled"]
    assert changes(heard(paid=True, cancelled=True), delivery()) == []


def test_other_lines_or_another_address_are_changes() -> None:
    more = [LINES[0] | {"qty": 2}]
    assert changes(heard(), delivery(lines=more)) == ["lines"]
    moved = ADDRESS | {"city": "Beijing"}
    assert changes(heard(), delivery(shipping_address=moved)) == ["address"]
    # Empty values are no information: the same address.
    assert changes(heard(), delivery(shipping_address=ADDRESS | {"postal_code": ""})) == []
    # Orders stored before the gateway kept lines and addresses: nothing to compare.
    assert changes(heard(lines=None, shipping_address=None), delivery(lines=more)) == []


def test_an_older_version_is_stale_only_when_both_are_timed() -> None:
    assert is_stale(heard(), delivery(channel_updated_at=T0 - timedelta(minutes=1)))
    assert not is_stale(heard(), delivery(channel_updated_at=T0))
    assert not is_stale(heard(channel_updated_at=None), delivery())
    assert not is_stale(heard(), delivery(channel_updated_at=None))


def test_lines_are_compared_by_line_number_sku_quantity_and_price() -> None:
    second = {"line_no": 2, "sku": "SKU-2", "qty": 1, "unit_price": "5.00", "warehouse": None}
    two = [LINES[0], second]
    # The same lines listed in another order are the same lines (line numbers count).
    assert changes(heard(lines=two), delivery(lines=[second, LINES[0]])) == []
    assert changes(heard(), delivery(lines=[LINES[0] | {"sku": "SKU-9"}])) == ["lines"]
    assert changes(heard(), delivery(lines=[LINES[0] | {"unit_price": "9.99"}])) == ["lines"]
