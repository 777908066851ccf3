"""A poll regrouped into runs of one event type, each key's events still in order."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms_messaging.consumer import in_runs


def item(event_type: str, key: str, n: int) -> Any:
    """What ``in_runs`` reads of a prepared message: its key and its event type."""
    return SimpleNamespace(
        message=SimpleNamespace(key=key.encode()),
        envelope=SimpleNamespace(event_type=event_type),
        n=n,
    )


def shape(items: list[Any]) -> list[str]:
    return [f"{i.envelope.event_type}{i.message.key.decode()}" for i in items]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # Two types alternating over different keys (a partition's reservations and
        # stock levels): two runs.
        (["A1", "B2", "A3", "B4"], ["A1", "A3", "B2", "B4"]),
        # One key changing type: its order stands, nothing can move past it.
        (["A1", "B1", "A1"], ["A1", "B1", "A1"]),
        # A new customer announced, then resolved, for several keys: every key's A
        # before its B, the As together, then the Bs.
        (["A1", "B1", "A2", "B2", "A3"], ["A1", "A2", "A3", "B1", "B2"]),
        ([], []),
    ],
)
def test_runs_of_one_type_keep_each_keys_order(before: list[str], after: list[str]) -> None:
    items = [item(code[0], code[1:], n) for n, code in enumerate(before)]
    assert shape(in_runs(items)) == after


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.sampled_from("wxyz")), max_size=60))
def test_every_key_sees_its_events_in_order_and_runs_never_multiply(
    events: list[tuple[str, str]],
) -> None:
    items = [item(t, k, n) for n, (t, k) in enumerate(events)]
    out = in_runs(items)
    assert sorted(i.n for i in out) == list(range(len(items)))  # nothing lost or doubled
    for key in {k for _, k in events}:
        assert [i.n for i in out if i.message.key == key.encode()] == [
            i.n for i in items if i.message.key == key.encode()
        ]

    def runs(seq: list[Any]) -> int:
        return sum(
            1
            for j, i in enumerate(seq)
            if j == 0 or seq[j - 1].envelope.event_type != i.envelope.event_type
        )

    assert runs(out) <= runs(items)
