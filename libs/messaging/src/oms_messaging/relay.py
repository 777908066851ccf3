"""The outbox relay: publishes committed outbox rows to Kafka, in order per key.

Rows are selected by the ``published_at IS NULL`` flag, never by "id greater than the
last seen" (ids commit out of order, so a cursor would skip rows for good). A row is
marked published only after the broker acknowledged it (acks=all, the send future
awaited); a crash in between republishes it, and the consumers' inbox absorbs the copy.

Several relays (one per service replica) share the work by key hash: the keys are split
into shards and a relay drains a shard only while it holds that shard's transaction-level
advisory lock, so two relays never publish rows of the same key concurrently and each
key's events leave in commit order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

#: First key of the advisory locks the relays take (the second is the shard number).
ADVISORY_LOCK_NAMESPACE = 7301

_HAS_WORK = text("SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)")
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:ns, :shard)")
_CLAIM = text(
    "SELECT id, topic, key, payload, event_type, headers FROM outbox"
    " WHERE published_at IS NULL AND (hashtext(key) & 2147483647) % :shards = :shard"
    " ORDER BY id LIMIT :limit"
)
_MARK = text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)")


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        *,
        shards: int = 4,
        batch_size: int = 500,
        poll_interval: float = 0.2,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._shards = shards
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.published_total = 0
        self.published_by_topic: dict[str, int] = {}

    def wake(self) -> None:
        """Ask for a pass now (called after a unit of work commits events)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop after one last pass, so events committed before shutdown are flushed."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.publish_pending()

    async def publish_pending(self) -> int:
        """One pass over every shard; returns the number of events published."""
        async with self._engine.connect() as conn:
            if not (await conn.execute(_HAS_WORK)).scalar():
                return 0
        published = 0
        for shard in range(self._shards):
            while True:
                n = await self._drain_shard(shard)
                published += n
                if n < self._batch_size:
                    break
        return published

    async def _drain_shard(self, shard: int) -> int:
        async with self._engine.connect() as conn, conn.begin():
            locked = (
                await conn.execute(_TRY_LOCK, {"ns": ADVISORY_LOCK_NAMESPACE, "shard": shard})
            ).scalar()
            if not locked:
                return 0  # another relay is draining this shard right now
            rows = (
                await conn.execute(
                    _CLAIM, {"shards": self._shards, "shard": shard, "limit": self._batch_size}
                )
            ).all()
            if not rows:
                return 0
            futures = [
                await self._producer.send(
                    row.topic,
                    value=row.payload.encode(),
                    key=row.key.encode(),
                    headers=[
                        ("event_type", row.event_type.encode()),
                        *(
                            (name, str(value).encode())
                            for name, value in (row.headers or {}).items()
                        ),
                    ],
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            await conn.execute(_MARK, {"ids": [row.id for row in rows]})
        self.published_total += len(rows)
        for row in rows:
            self.published_by_topic[row.topic] = self.published_by_topic.get(row.topic, 0) + 1
        return len(rows)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()  # before the pass: a wake during it triggers another pass
            try:
                published = await self.publish_pending()
                failures = 0
            except Exception:
                failures += 1
                delay = min(5.0, 0.1 * 2**failures) * (0.5 + random.random() / 2)
                log.exception("outbox relay pass failed; retrying in %.2fs", delay)
                await asyncio.sleep(delay)
                continue
            if published == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
