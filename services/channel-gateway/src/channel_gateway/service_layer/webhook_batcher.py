"""Acknowledging webhooks in group commits: one transaction for every delivery waiting.

A webhook is answered only once its channel order and event are committed, and on a
promotion day hundreds arrive a second. Committing each in a transaction of its own
costs four round trips (begin, claim, outbox, commit) and a WAL flush per order, which
was most of the gateway's CPU and much of PostgreSQL's. Here each request hands its
verified, parsed order to the batcher and waits; one writer takes every delivery queued
by then and commits them together (:func:`ingest_batch`: one claim statement, one audit
statement, one outbox insert). While it commits, new deliveries queue for the next
group, so a quiet gateway commits alone with no added wait, and a busy one amortises
each commit over the burst.

A group that fails is retried one delivery at a time, each in its own unit of work, so
one bad delivery fails only its own request, as before. A request that gives up (the
client went away) may still be committed; the channel's retry is then a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from channel_gateway.domain.platforms import ChannelOrder
from channel_gateway.ingest import Ingested, ingest, ingest_batch
from oms_messaging import UnitOfWork

log = logging.getLogger(__name__)

UowFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@dataclass
class _Waiting:
    uow: UowFactory
    channel: str
    incoming: ChannelOrder
    answer: asyncio.Future[Ingested] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class WebhookBatcher:
    """Group commit of webhook deliveries (at most ``max_group`` in one transaction).

    One per router, and a router serves one runtime: a group commits in the unit of
    work of its first delivery's runtime.
    """

    def __init__(self, max_group: int = 200) -> None:
        self._max_group = max_group
        self._queue: list[_Waiting] = []
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None

    async def ingest(self, uow: UowFactory, channel: str, incoming: ChannelOrder) -> Ingested:
        """Claim, audit and publish the delivery; returns once it is committed."""
        waiting = _Waiting(uow, channel, incoming)
        # Retrieved here even when the request is gone, so a failure is not reported as
        # "never retrieved" (the request's own copy was already answered).
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
            self._writer = loop.create_task(self._write_forever(self._wake), name="webhook-writer")
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

    async def _commit(self, group: list[_Waiting]) -> None:
        if len(group) == 1:  # alone: the single-delivery path is one statement shorter
            await self._commit_alone(group[0])
            return
        try:
            async with group[0].uow() as uow:
                results = await ingest_batch(uow, [(w.channel, w.incoming) for w in group])
                await uow.commit()
        except Exception:
            log.warning("a group of %d webhooks failed; committing them one by one", len(group))
            for waiting in group:
                await self._commit_alone(waiting)
            return
        for waiting, result in zip(group, results, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(result)

    async def _commit_alone(self, waiting: _Waiting) -> None:
        try:
            async with waiting.uow() as uow:
                result = await ingest(uow, waiting.channel, waiting.incoming)
                await uow.commit()
        except Exception as exc:
            if not waiting.answer.done():
                waiting.answer.set_exception(exc)
            return
        if not waiting.answer.done():
            waiting.answer.set_result(result)
