"""The group commit with plain callbacks (no database): grouping, the one-by-one fallback,
each request's correlation id."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from oms_messaging.context import correlation_id_var
from oms_servicekit.group_commit import GroupCommit, Submitted


class Recorder:
    """Callbacks that answer ``item * 10`` and remember how they were called."""

    def __init__(self, *, fail_groups_with: int | None = None, delay: float = 0.01) -> None:
        self.groups: list[list[int]] = []
        self.alone: list[tuple[int, str | None]] = []
        self.correlations: list[str | None] = []
        self._fail_with = fail_groups_with
        self._delay = delay

    async def group(self, submitted: Sequence[Submitted[int]]) -> list[int]:
        await asyncio.sleep(self._delay)  # the database round trips
        items = [s.item for s in submitted]
        if self._fail_with in items:
            raise RuntimeError("a group holding the poison fails")
        self.groups.append(items)
        self.correlations += [s.correlation_id for s in submitted]
        return [item * 10 for item in items]

    async def one(self, item: int) -> int:
        self.alone.append((item, correlation_id_var.get()))
        if item == self._fail_with:
            raise ValueError(f"{item} is refused")
        return item * 10


async def submit_all(commit: GroupCommit[int, int], items: list[int]) -> list[object]:
    async def one(item: int) -> int:
        correlation_id_var.set(f"corr-{item}")  # each request task has its own context
        return await commit.submit(item)

    return list(await asyncio.gather(*(one(i) for i in items), return_exceptions=True))


async def test_requests_waiting_together_are_committed_together_in_order() -> None:
    calls = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(calls.group, calls.one)
    # A request arriving alone is committed alone, under its correlation id.
    assert await submit_all(commit, [1]) == [10]
    assert calls.alone == [(1, "corr-1")]
    # Requests arriving together go together, in arrival order, each with its own id.
    answers = await submit_all(commit, list(range(2, 21)))
    assert answers == [i * 10 for i in range(2, 21)]
    assert calls.groups == [list(range(2, 21))]
    assert calls.correlations == [f"corr-{i}" for i in range(2, 21)]


async def test_a_failing_group_is_committed_one_by_one_and_fails_only_its_culprit() -> None:
    calls = Recorder(fail_groups_with=7)
    commit: GroupCommit[int, int] = GroupCommit(calls.group, calls.one)
    answers = await submit_all(commit, list(range(1, 11)))
    assert isinstance(answers[6], ValueError)
    assert [a for i, a in enumerate(answers) if i != 6] == [i * 10 for i in range(1, 11) if i != 7]
    # Each one of the failed group ran alone under its own request's correlation id.
    assert calls.alone == [(i, f"corr-{i}") for i in range(1, 11)]
