"""The customer domain's rules at their edges, as plain objects: tag facts and their
windows (per order and from running totals), rule errors and where they point, which
rule names a tag, fuzzy matching's thresholds and tie-break, required profile fields.

Written against the survivors of mutation testing: each assertion pins a boundary or a
value a small change to the rule would move.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from customer_svc.domain.identity import default_region, set_default_region
from customer_svc.domain.matching import Candidate, address_line, best_fuzzy_match
from customer_svc.domain.profile import missing_required
from customer_svc.domain.tagging import (
    DayTally,
    OrderFact,
    OrderTotals,
    RuleError,
    TagRule,
    compile_rule,
    facts,
    facts_from_totals,
    rule_tags,
    window_start,
)

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def order(days_ago: float, *needs: str, status: str = "paid", items: int = 1) -> OrderFact:
    return OrderFact(
        total=Decimal("10.50"),
        item_count=items,
        delivery_requirements=list(needs),
        status=status,
        channel="web" if not needs else "app",
        ordered_at=NOW - timedelta(days=days_ago),
    )


def test_facts_count_live_orders_inside_their_windows_to_the_day() -> None:
    history = [
        order(90, "cold_chain", items=3),  # exactly at the window's start: counts
        order(90.001, "cold_chain", items=5),  # just before: does not
        order(180, "fragile", items=2),
        order(180.001, "fragile", items=7),
        order(1, "cold_chain", status="cancelled", items=11),
    ]
    got = facts(history, 2, NOW)
    assert got == {
        "order_count": 4.0,
        "lifetime_value": 42.0,
        "complaints": 2.0,
        "cold_chain_orders_90d": 1.0,
        "cold_chain_items_90d": 3.0,
        "fragile_orders_180d": 1.0,
        "fragile_items_180d": 2.0,
        "days_since_last_order": 90.0,
        "channels": ["app"],
    }


def test_facts_of_a_customer_without_orders() -> None:
    got = facts([order(1, status="cancelled")], 0, NOW)
    assert got["order_count"] == 0.0
    assert got["lifetime_value"] == 0.0
    assert got["days_since_last_order"] is None
    assert got["channels"] == []


def test_facts_from_totals_count_whole_days_from_the_windows_first_day() -> None:
    assert window_start(NOW, 90) == (NOW - timedelta(days=90)).date()
    first90, first180 = window_start(NOW, 90), window_start(NOW, 180)
    days = [
        DayTally(first90, cold_chain_orders=1, cold_chain_items=4),
        DayTally(first90 - timedelta(days=1), cold_chain_orders=10, cold_chain_items=10),
        DayTally(first180, fragile_orders=2, fragile_items=6),
        DayTally(first180 - timedelta(days=1), fragile_orders=20, fragile_items=20),
    ]
    totals = OrderTotals(
        order_count=3,
        lifetime_value=Decimal("99.90"),
        last_order_at=NOW - timedelta(days=2),
        channels={"web": 2, "app": 0, "live": 1},
        complaints=1,
    )
    assert facts_from_totals(totals, days, NOW) == {
        "order_count": 3.0,
        "lifetime_value": 99.9,
        "complaints": 1.0,
        "cold_chain_orders_90d": 1.0,
        "cold_chain_items_90d": 4.0,
        "fragile_orders_180d": 2.0,
        "fragile_items_180d": 6.0,
        "days_since_last_order": 2.0,
        "channels": ["live", "web"],
    }
    assert facts_from_totals(OrderTotals(), [], NOW)["days_since_last_order"] is None


def test_a_rule_error_says_what_and_where() -> None:
    with pytest.raises(RuleError) as unknown:
        compile_rule("order_count > 1 and spend > 5")
    assert (unknown.value.message, unknown.value.position) == ("unknown fact 'spend'", 20)
    assert str(unknown.value) == "unknown fact 'spend'"
    with pytest.raises(RuleError) as at_start:
        compile_rule("spend > 5")
    assert at_start.value.position == 0
    with pytest.raises(RuleError) as syntax:
        compile_rule("order_count >")
    assert syntax.value.message.startswith("syntax error: ")
    assert syntax.value.position == len("order_count >")


def test_the_first_matching_rule_names_the_tag_and_a_rule_that_cannot_hold_does_not() -> None:
    rules = [
        TagRule("never-bought", "lapsed", "days_since_last_order > 30"),  # null: no match
        TagRule("big", "vip", "lifetime_value >= 100"),
        TagRule("bigger", "vip", "lifetime_value >= 50"),
        TagRule("frequent", "loyal", "order_count >= 2"),
    ]
    fact_values = {"lifetime_value": 120.0, "order_count": 1.0, "days_since_last_order": None}
    assert rule_tags(rules, fact_values) == {"vip": "big"}


def test_fuzzy_matching_needs_both_thresholds_and_prefers_the_higher_score() -> None:
    home = address_line({"line1": "1 Demo Road", "city": "Shanghai", "region": "CN-SH"})
    assert home == "1 demo road shanghai cn sh"
    assert address_line({"region": "CN-SH", "city": "Shanghai"}) is None
    assert address_line({"postal_code": "200000"}) == "200000"
    assert address_line({"line1": "  ,  "}) is None
    a, b, c = (uuid.UUID(int=n) for n in (1, 2, 3))
    candidates = [
        Candidate(a, "Li Lei", home),  # the same person
        Candidate(b, "Li Lai", home),  # a close name, same address
        Candidate(c, None, home),
    ]
    best = best_fuzzy_match("Li Lei", home, candidates)
    assert best is not None and best.candidate_id == a
    assert best.name_score == 100.0 and best.address_score == 100.0 and best.score == 100.0
    assert best_fuzzy_match("Li Lei", home, [Candidate(b, "Li Lai", home)]) is None
    elsewhere = address_line({"line1": "99 Other Street", "city": "Beijing"})
    assert elsewhere is not None
    assert best_fuzzy_match("Li Lei", home, [Candidate(a, "Li Lei", elsewhere)]) is None
    assert best_fuzzy_match(None, home, candidates) is None
    assert best_fuzzy_match("Li Lei", None, candidates) is None
    twins = [Candidate(b, "Li Lei", home), Candidate(a, "Li Lei", home)]
    tie = best_fuzzy_match("Li Lei", home, twins)
    assert tie is not None and tie.candidate_id == b  # equal scores: the larger id, stably


def test_a_required_field_is_missing_when_empty_or_absent_at_any_depth() -> None:
    profile = {"name": "Li Lei", "phone": "", "address": {"city": "Shanghai", "line1": None}}
    assert missing_required(profile, ["name", "address.city"]) is None
    assert missing_required(profile, ["name", "phone"]) == "phone"
    assert missing_required(profile, ["address.line1"]) == "address.line1"
    assert missing_required(profile, ["name.first"]) == "name.first"
    assert missing_required({"tags": [], "x": {}}, ["tags"]) == "tags"
    assert missing_required({"note": "XXXX"}, ["note"]) is None


def test_an_unknown_phone_region_is_refused_by_name() -> None:
    before = default_region()
    with pytest.raises(ValueError, match="unknown phone region 'XX'"):
        set_default_region("XX")
    assert default_region() == before
