"""Fuzzy matching at its thresholds and over many candidates, and where a tag rule's error
is, as plain objects."""

from __future__ import annotations

import uuid

import pytest

from customer_svc.domain.matching import Candidate, best_fuzzy_match
from customer_svc.domain.tagging import RuleError, compile_rule

HOME = "11 demo rd"


def test_each_threshold_is_a_minimum_the_match_may_reach() -> None:
    # token-sort similarity: 85.0 of the names (Polish spelling), 90.0 of the addresses
    at_both = Candidate(uuid.UUID(int=1), "Maximiljan Schnajder", "12 demo rd")
    match = best_fuzzy_match("Maximilian Schneider", HOME, [at_both])
    assert match is not None and (match.name_score, match.address_score) == (85.0, 90.0)


def test_names_match_whatever_their_case_and_punctuation() -> None:
    match = best_fuzzy_match("LI, Lei", HOME, [Candidate(uuid.UUID(int=1), "Li Lei", HOME)])
    assert match is not None and match.name_score == 100.0


def test_candidates_that_do_not_match_do_not_stop_the_search() -> None:
    ids = [uuid.UUID(int=n) for n in range(1, 6)]
    candidates = [
        Candidate(ids[0], None, HOME),  # no name
        Candidate(ids[1], "Han Meimei", HOME),  # another name
        Candidate(ids[2], "Li Lei", "88 other street beijing"),  # another address
        Candidate(ids[3], "Li Lei", HOME),
    ]
    match = best_fuzzy_match("Li Lei", HOME, candidates)
    assert match is not None and match.candidate_id == ids[3]


def test_equal_scores_go_to_the_larger_id_in_any_order() -> None:
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    twins = [Candidate(a, "Li Lei", HOME), Candidate(b, "Li Lei", HOME)]
    for order in (twins, twins[::-1]):
        match = best_fuzzy_match("Li Lei", HOME, order)
        assert match is not None and match.candidate_id == b


def test_a_rule_error_points_at_the_first_unknown_fact_or_says_what_is_wrong() -> None:
    with pytest.raises(RuleError) as unknown:
        compile_rule("order_count > 1 and nope > 1 or nope < 0")
    assert (unknown.value.message, unknown.value.position) == ("unknown fact 'nope'", 20)
    with pytest.raises(RuleError) as mismatch:
        compile_rule("order_count > 'a lot'")
    assert (mismatch.value.message, mismatch.value.position) == (
        "invalid rule: data type mismatch",
        None,
    )
