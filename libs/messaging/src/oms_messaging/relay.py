"""The outbox relay: publishes committed outbox rows to Kafka, in order per key.

Rows are selected by the ``published_at IS NULL`` flag, never by "id greater than the
last seen" (ids commit out of order, so a cursor would skip rows for good). A row is
marked published only after the broker acknowledged it (acks=all, the send future
awaited); a crash in between republishes it, and the consumers' inbox absorbs the copy.

Several relays (one per service replica) share the work by key hash: the keys are split
into shards and a relay drains a shard only while it holds that shard's transaction-level
advisory lock, so two relays never publish rows of the same key concurrently and each
key's events leave in commit order.

It cannot wedge. A row that can never be published is *parked*: marked with the time
and the reason, counted, left for an operator, and the rows after it go out. "Never" is
either known at once (over the size limit, refused by the client or the broker with a
non-retriable error such as MessageSizeTooLarge or InvalidTopic) or learnt: a row whose
send fails ``max_send_attempts`` passes in a row with an error that is not about the
broker being away (an unknown, non-retriable error) is parked too, so no error we did
not foresee can hold a shard for good. The count is per relay process (a restart starts
it again), which only delays such a parking.

Per-key order, knowingly given up in one case: later events of the same key overtake a
parked one (they are published, it is not). Stopping the key instead would stop every
event of that order or SKU behind one bad event, with no way out but an operator; the
parked row stays visible (``parked_at``, ``park_reason``, the ``oms_outbox_parked``
gauge and its alert) for the operator to fix and re-publish. A row that fails for a
reason that may pass is not overtaken for long: it and the rows after it are sent
again on the next pass (copies already delivered are absorbed by the consumers' inbox).

A broker that is down or slow parks nothing: the rows wait and are sent again, for as
long as it takes. A shard that fails is retried on its own, after a back-off; the other
shards go on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from oms_messaging.errors import (
    MAX_EVENT_BYTES,
    EventTooLarge,
    is_broker_unavailable,
    is_unpublishable,
)

log = logging.getLogger(__name__)

#: First key of the advisory locks the relays take (the second is the shard number).
ADVISORY_LOCK_NAMESPACE = 7301

_HAS_WORK = text(
    "SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL AND parked_at IS NULL)"
)
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:ns, :shard)")
_CLAIM = text(
    "SELECT id, topic, key, payload, event_type, headers FROM outbox"
    " WHERE published_at IS NULL AND parked_at IS NULL"
    " AND (hashtext(key) & 2147483647) % :shards = :shard"
    " ORDER BY id LIMIT :limit"
)
_MARK = text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)")
_PARK = text("UPDATE outbox SET parked_at = now(), park_reason = :reason WHERE id = :id")


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        *,
        shards: int = 4,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_send_attempts: int = 5,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._shards = shards
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_event_bytes = max_event_bytes
        self._max_send_attempts = max(1, max_send_attempts)
        #: Outbox id -> passes in a row its send failed with an error not about the broker
        #: being away (only rows that are failing; forgotten once sent or parked).
        self._send_failures: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        #: Consecutive failed passes per shard, and when (loop time) it may try again.
        self._shard_failures: dict[int, int] = {}
        self._shard_retry_at: dict[int, float] = {}
        self.published_total = 0
        self.published_by_topic: dict[str, int] = {}
        #: Rows this relay parked (the database holds the whole count, see metrics).
        self.parked_total = 0

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
        self._shard_retry_at.clear()
        with contextlib.suppress(Exception):
            await self.publish_pending()

    async def publish_pending(self) -> int:
        """One pass over every shard; returns the number of events published.

        Each shard is drained on its own: one that fails is logged and backed off while
        the others are drained as usual.
        """
        async with self._engine.connect() as conn:
            if not (await conn.execute(_HAS_WORK)).scalar():
                return 0
        published = 0
        now = asyncio.get_running_loop().time()
        for shard in range(self._shards):
            if self._shard_retry_at.get(shard, 0.0) > now:
                continue
            try:
                while True:
                    n = await self._drain_shard(shard)
                    published += n
                    if n < self._batch_size:
                        break
            except Exception:
                failures = self._shard_failures.get(shard, 0) + 1
                self._shard_failures[shard] = failures
                delay = min(5.0, 0.1 * 2**failures) * (0.5 + random.random() / 2)
                self._shard_retry_at[shard] = now + delay
                log.exception("outbox relay: shard %d failed; retrying it in %.2fs", shard, delay)
            else:
                self._shard_failures.pop(shard, None)
                self._shard_retry_at.pop(shard, None)
        return published

    async def _drain_shard(self, shard: int) -> int:
        """Publish up to one batch of the shard; the number of rows done (sent or parked).

        Rows are marked published up to the first one the broker did not take for a
        reason that may pass (that one and the rest wait for the next pass, re-sent in
        order; their copies already delivered are absorbed by the consumers' inbox).
        """
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
            outcomes = await self._send_all(rows)
            sent: list[Any] = []
            done = 0
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome is None:
                    sent.append(row)
                    self._send_failures.pop(row.id, None)
                elif is_unpublishable(outcome):
                    await self._park(conn, row, _describe(outcome))
                elif (attempts := self._count_failure(row, outcome)) >= self._max_send_attempts:
                    reason = f"failed {attempts} times in a row, last: {_describe(outcome)}"
                    await self._park(conn, row, reason)
                else:
                    log.warning(
                        "outbox relay: the broker did not take %s (%s); sending again later",
                        row.event_type,
                        type(outcome).__name__,
                    )
                    break
                done += 1
            if sent:
                await conn.execute(_MARK, {"ids": [row.id for row in sent]})
        self.published_total += len(sent)
        for row in sent:
            self.published_by_topic[row.topic] = self.published_by_topic.get(row.topic, 0) + 1
        if done < len(rows):
            raise RuntimeError(f"shard {shard}: the broker took {done} of {len(rows)} events")
        return done

    async def _send_all(self, rows: Sequence[Any]) -> list[BaseException | None]:
        """Send every row (all enqueued first, then awaited together); each row's error or
        None. A row over the size limit is not sent at all."""
        futures: list[asyncio.Future[Any] | BaseException] = []
        for row in rows:
            try:
                value = row.payload.encode()
                if len(value) > self._max_event_bytes:
                    raise EventTooLarge(row.event_type, len(value), self._max_event_bytes)
                futures.append(
                    await self._producer.send(
                        row.topic,
                        value=value,
                        key=row.key.encode(),
                        headers=[
                            ("event_type", row.event_type.encode()),
                            *(
                                (name, str(header).encode())
                                for name, header in (row.headers or {}).items()
                            ),
                        ],
                    )
                )
            except Exception as exc:
                futures.append(exc)
        outcomes: list[BaseException | None] = []
        for future in futures:
            if isinstance(future, BaseException):
                outcomes.append(future)
                continue
            try:
                await future
                outcomes.append(None)
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _count_failure(self, row: Any, error: BaseException) -> int:
        """The passes in a row ``row`` has now failed for a reason of its own (0 when the
        broker is away: that is never the event's fault, so it never leads to parking)."""
        if is_broker_unavailable(error):
            return 0
        attempts = self._send_failures.get(row.id, 0) + 1
        self._send_failures[row.id] = attempts
        return attempts

    async def _park(self, conn: AsyncConnection, row: Any, reason: str) -> None:
        """Set ``row`` aside for good, with why (never its payload: it may name people)."""
        reason = reason[:500]
        self._send_failures.pop(row.id, None)
        await conn.execute(_PARK, {"id": row.id, "reason": reason})
        self.parked_total += 1
        log.error(
            "outbox event parked: it can never be published",
            extra={"event_type": row.event_type, "outbox_id": row.id, "reason": reason},
        )

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before the pass: a wake during it triggers another pass
            try:
                published = await self.publish_pending()
            except Exception:
                # Only the "has work" probe gets here (the database is away): back off.
                delay = 0.5 + random.random()
                log.exception("outbox relay pass failed; retrying in %.2fs", delay)
                await asyncio.sleep(delay)
                continue
            if published == 0:
                timeout = self._poll_interval
                if self._shard_retry_at:
                    wait = min(self._shard_retry_at.values()) - asyncio.get_running_loop().time()
                    timeout = max(0.01, min(timeout, wait))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)


def _describe(error: BaseException) -> str:
    """Why a send failed, for the park reason and the log: the error's type and message
    (the client's and the broker's messages name sizes and topics, not the payload)."""
    return f"{type(error).__name__}: {error}"
