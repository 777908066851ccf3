"""Fuzzy matching of people by name and address (rapidfuzz): it only ever PROPOSES a
merge. Exact data (platform id, phone, e-mail) links; similar data asks an operator."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process, utils

#: Minimum token-sort similarity (0-100) of the names for a proposal.
NAME_THRESHOLD = 85.0
#: Minimum similarity of the one-line addresses for a proposal.
ADDRESS_THRESHOLD = 90.0
_ADDRESS_PARTS = ("line1", "city", "region", "postal_code")


def address_line(address: Mapping[str, Any] | None) -> str | None:
    """One normalized line (lower case, punctuation dropped) for an address, or None
    when it says nothing more than a region."""
    if not address or not (address.get("line1") or address.get("postal_code")):
        return None
    text = " ".join(str(address[k]) for k in _ADDRESS_PARTS if address.get(k))
    line = utils.default_process(text)
    return " ".join(line.split()) or None


@dataclass(frozen=True)
class Candidate:
    customer_id: uuid.UUID
    name: str | None
    address_key: str


@dataclass(frozen=True)
class FuzzyMatch:
    candidate_id: uuid.UUID
    name_score: float
    address_score: float

    @property
    def score(self) -> float:
        return (self.name_score + self.address_score) / 2


def best_fuzzy_match(
    name: str | None, address_key: str | None, candidates: Iterable[Candidate]
) -> FuzzyMatch | None:
    """The most similar candidate above both thresholds, or None."""
    if not name or not address_key:
        return None
    pool = list(candidates)
    # Names first, in one call over all candidates (the loop runs in rapidfuzz's C code):
    # most candidates share only a postal code and fail here.
    named = process.extract(
        name,
        [c.name for c in pool],
        scorer=fuzz.token_sort_ratio,
        processor=utils.default_process,
        score_cutoff=NAME_THRESHOLD,
        limit=None,
    )
    best: FuzzyMatch | None = None
    for _, name_score, index in named:
        c = pool[index]
        address_score = fuzz.token_sort_ratio(address_key, c.address_key)
        if address_score < ADDRESS_THRESHOLD:
            continue
        found = FuzzyMatch(c.customer_id, name_score, address_score)
        if best is None or (found.score, str(c.customer_id)) > (best.score, str(best.candidate_id)):
            best = found
    return best
