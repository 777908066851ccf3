"""Group commit: concurrent requests answered from one transaction.

A request that must be answered only once its change is committed (a webhook, an
identity resolution) costs a transaction of its own: a begin, its statements, an outbox
insert and a commit with a WAL flush, for one row. When hundreds arrive a second, each
request hands its parsed input here and waits; one writer takes every request queued by
then and applies them together in one unit of work (set-based statements for the whole
group). While it commits, new requests queue for the next group, so a quiet service
commits each request alone with no added wait, and a busy one amortises each commit over
the burst.

A group that fails is retried one request at a time, each in its own unit of work, so
one bad request fails only its own caller. A caller that gives up (the client went
away) may still be committed; the client's retry then finds what it did.

The writer is one task doing the work of many requests, so it cannot simply inherit a
request's context: each request's correlation id travels with it (:class:`Submitted`),
the single path runs under it, and a group's callback puts it around each request's part
(``oms_messaging.context.correlated``), so every event and audit row names the request
that caused it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from oms_messaging.context import correlated, correlation_id_var

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Submitted(Generic[T]):
    """A request's input and the correlation id of the request that submitted it."""

    item: T
    correlation_id: str | None


@dataclass
class _Waiting(Generic[T, R]):
    submitted: Submitted[T]
    answer: asyncio.Future[R] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit(Generic[T, R]):
    """Requests of one kind, committed in groups of at most ``max_group``.

    ``commit_group(submitted)`` applies and commits a group in one unit of work and
    answers each item, in order; it must have the effect of ``commit_one`` on each item in
    turn (``commit_one`` stays the reference, and the fallback when a group fails).
    ``commit_one`` is also what a request arriving alone goes through; it runs under the
    request's correlation id.
    """

    def __init__(
        self,
        commit_group: Callable[[Sequence[Submitted[T]]], Awaitable[Sequence[R]]],
        commit_one: Callable[[T], Awaitable[R]],
        *,
        max_group: int = 200,
        name: str = "group-commit",
    ) -> None:
        self._commit_group = commit_group
        self._commit_one = commit_one
        self._max_group = max_group
        self._name = name
        self._queue: list[_Waiting[T, R]] = []
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Apply ``item`` with the requests waiting beside it; returns once committed."""
        waiting: _Waiting[T, R] = _Waiting(Submitted(item, correlation_id_var.get()))
        # Retrieved here even when the caller is gone, so a failure is not reported as
        # "never retrieved" (the caller's own copy was already answered).
        waiting.answer.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.append(waiting)
        self._ensure_writer().set()
        return await asyncio.shield(waiting.answer)

    def _ensure_writer(self) -> asyncio.Event:
        """The writer task of the running loop, started on first use (tests run apps on
        several loops; a writer belongs to one)."""
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._writer = loop.create_task(self._write_forever(self._wake), name=self._name)
        assert self._wake is not None
        return self._wake

    async def _write_forever(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            while self._queue:
                group = self._queue[: self._max_group]
                del self._queue[: self._max_group]
                await self._commit(group)

    async def _commit(self, group: list[_Waiting[T, R]]) -> None:
        if len(group) == 1:
            await self._commit_alone(group[0])
            return
        try:
            results = await self._commit_group([w.submitted for w in group])
        except Exception:
            log.warning("a group of %d failed; committing them one by one", len(group))
            for waiting in group:
                await self._commit_alone(waiting)
            return
        for waiting, result in zip(group, results, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(result)

    async def _commit_alone(self, waiting: _Waiting[T, R]) -> None:
        submitted = waiting.submitted
        try:
            with correlated(submitted.correlation_id):
                result = await self._commit_one(submitted.item)
        except Exception as exc:
            if not waiting.answer.done():
                waiting.answer.set_exception(exc)
            return
        if not waiting.answer.done():
            waiting.answer.set_result(result)
