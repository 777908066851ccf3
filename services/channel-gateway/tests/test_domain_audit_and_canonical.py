"""The gateway's domain as plain objects: what the audit trail shows of a channel change
(credentials masked, rotations told), of a SKU map change (counts and changed entries),
the canonical order's event, and the channel's priority rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from channel_gateway.domain.audit_views import (
    SKU_ENTRIES_LISTED,
    channel_change,
    channel_view,
    sku_map_change,
)
from channel_gateway.domain.canonical import CanonicalOrder
from channel_gateway.domain.config import ChannelSettings, OrderClassRule, PullConfig, classify

PULL = PullConfig(base_url="https://top.example.com/router", app_key="k-1", session="s-1")  # type: ignore[arg-type]


def test_the_trail_masks_the_secret_and_the_marketplace_credentials() -> None:
    view = channel_view(ChannelSettings(type="pull", pull=PULL), secret="shh")
    assert view["secret"] == "***"
    assert (view["pull"]["app_key"], view["pull"]["session"]) == ("***", "***")
    assert view["pull"]["base_url"] == "https://top.example.com/router"
    assert view["pull"]["page_size"] == 50 and view["type"] == "pull"
    no_session = PULL.model_copy(update={"session": None})
    bare = channel_view(ChannelSettings(type="pull", pull=no_session), secret="")
    assert (bare["secret"], bare["pull"]["session"], bare["pull"]["app_key"]) == (None, None, "***")
    assert channel_view(ChannelSettings(), secret=None)["pull"] is None


def test_a_channel_change_lists_the_changed_fields_masked_and_a_rotation() -> None:
    before = ChannelSettings(type="pull", pull=PULL)
    after = ChannelSettings(type="pull", pull=PULL, split_shipment="forbid")
    assert channel_change(before, after, secret_before="a", secret_after="a") == (
        {"split_shipment": "allow"},
        {"split_shipment": "forbid"},
    )
    rotated = channel_change(before, before, secret_before="a", secret_after="b")
    assert rotated == ({"secret": "***"}, {"secret": "*** (rotated)"})
    assert channel_change(before, before, secret_before="a", secret_after="a") is None
    new_session = ChannelSettings(type="pull", pull=PULL.model_copy(update={"session": "s-2"}))
    old, new = channel_change(before, new_session, secret_before="a", secret_after="a") or ({}, {})
    assert list(old) == ["pull"] and old["pull"]["session"] == new["pull"]["session"] == "***"


def test_a_sku_map_change_counts_and_lists_what_changed() -> None:
    before = {"A": "SKU-A", "B": "SKU-B", "C": "SKU-C"}
    after = {"A": "SKU-A", "B": "SKU-B2", "D": "SKU-D"}
    assert sku_map_change(before, after) == (
        {"mappings": 3, "entries": {"B": "SKU-B", "C": "SKU-C"}},
        {"mappings": 3, "entries": {"B": "SKU-B2", "D": "SKU-D"}},
    )
    assert sku_map_change(before, dict(before)) is None
    many = {f"K{i}": "X" for i in range(SKU_ENTRIES_LISTED + 1)}
    assert sku_map_change({}, many) == ({"mappings": 0}, {"mappings": 101, "entries_changed": 101})
    exactly = {f"K{i}": "X" for i in range(SKU_ENTRIES_LISTED)}
    listed = sku_map_change({}, exactly)
    assert listed is not None and len(listed[1]["entries"]) == 100


def canonical(**overrides: object) -> CanonicalOrder:
    body: dict[str, object] = {
        "channel_order_id": " W-1 ",
        "customer": {"platform_user_id": "u1", "name": "Li Lei", "phone": "+8613800000001"},
        "lines": [
            {"sku": "SKU-1", "qty": 2, "unit_price": "19.90"},
            {"sku": "SKU-2", "qty": 1, "unit_price": "5"},
        ],
        "currency": "CNY",
        "shipping_address": {"region": "CN-SH", "city": "Shanghai", "line1": "1 Demo Road"},
    }
    return CanonicalOrder.model_validate(body | overrides)


def test_the_canonical_order_becomes_its_event_with_numbered_lines() -> None:
    paid_at = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)
    updated = datetime(2026, 11, 11, 0, 5, tzinfo=UTC)
    received = datetime(2026, 11, 11, 0, 6, tzinfo=UTC)
    order = canonical(
        paid=True,
        paid_at=paid_at,
        delivery_requirements=["cold_chain"],
        notes="ring twice",
        priority="urgent",
        payment_terms="on_account",
        updated_at=updated,
    )
    order_id = uuid.UUID(int=5)
    event = order.to_event(channel="web", order_id=order_id, received_at=received)
    assert (event.order_id, event.channel, event.channel_order_id) == (order_id, "web", "W-1")
    assert [(ln.line_no, ln.sku, ln.qty, ln.unit_price) for ln in event.lines] == [
        (1, "SKU-1", 2, Decimal("19.90")),
        (2, "SKU-2", 1, Decimal("5")),
    ]
    assert (event.customer.platform_user_id, event.customer.name) == ("u1", "Li Lei")
    assert (event.shipping_address.region, event.shipping_address.line1) == (
        "CN-SH",
        "1 Demo Road",
    )
    assert (event.currency, event.paid, event.paid_at) == ("CNY", True, paid_at)
    assert (event.delivery_requirements, event.notes, event.priority) == (
        ["cold_chain"],
        "ring twice",
        "urgent",
    )
    assert (event.payment_terms, event.received_at, event.channel_updated_at) == (
        "on_account",
        received,
        updated,
    )


def test_a_paid_order_must_say_when() -> None:
    with pytest.raises(ValidationError, match="paid_at is required when paid is true"):
        canonical(paid=True)
    assert canonical(paid=False).paid_at is None


def test_urgent_rules_match_case_blind_on_their_own_attribute_only() -> None:
    rules = [
        OrderClassRule(attribute="shipping_method", contains="EXPRESS"),
        OrderClassRule(attribute="tag", contains="vip", priority="normal"),
    ]

    def priority(methods: list[str], tags: list[str], current: str = "normal") -> str:
        return classify(
            rules,
            shipping_methods=methods,
            delivery_requirements=["express"],
            tags=tags,
            current=current,  # type: ignore[arg-type]
        )

    assert priority(["SF express"], []) == "urgent"
    assert priority(["standard"], ["VIP"]) == "normal"
    assert priority(["standard"], [], "urgent") == "urgent"
