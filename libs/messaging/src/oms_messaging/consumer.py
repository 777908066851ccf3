"""The consumer runner: batches from Kafka, each event applied once, poison to the DLQ.

For every message: parse the envelope (unparseable -> dead-letter at once), look up a
handler by event type (none -> not ours, skip), parse the payload (unknown schema version
or invalid -> dead-letter at once), then in one unit of work record the event ids in the
inbox (one statement per chunk) and run the handlers. The messages of a poll share one
transaction (up to ``apply_batch_max``; all of a partition's, in order, then the next
partition's): one commit for many events is where
the throughput comes from; a chunk that fails is rolled back and replayed message by
message. A redelivered event finds its id in the inbox and changes nothing. Offsets are
committed after the database, only for partitions still owned.

Failures: infrastructure errors (database or network down) are retried with capped
backoff for as long as they last; any other error is retried ``max_attempts`` times and
then the message goes to ``<topic>.dlq`` with headers naming its origin and the error,
and the partition moves on.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from oms_contracts import REGISTRY, Envelope, Event, EventRegistry, UnknownEventError
from oms_contracts.topics import dead_letter_topic
from oms_messaging.context import correlation_id_var
from oms_messaging.errors import is_transient
from oms_messaging.inbox import INBOX_TABLE, Inbox
from oms_messaging.tracing import context_from_headers, tracer, tracing_enabled
from oms_messaging.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, Envelope, Event], Awaitable[None]]
#: Applies a run of consecutive events of one type in one call (set-based SQL, one write
#: per table for the whole run). It must have the effect of applying them one by one with
#: the type's :data:`Handler`, in order: that handler stays the reference, and the runner
#: falls back to it to find the one event a failed run stumbled on.
BatchHandler = Callable[[UnitOfWork, list[tuple[Envelope, Event]]], Awaitable[None]]


@dataclass(frozen=True)
class _Prepared:
    """A parsed message with the handler that applies it."""

    message: ConsumerRecord[bytes, bytes]
    envelope: Envelope
    event: Event
    handler: Handler


@dataclass
class ConsumerStats:
    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    #: (topic, outcome) -> count; outcome is applied, duplicate, skipped or dead_lettered.
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (topic, partition) -> the next offset this consumer will process.
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    #: Events inside the transaction being applied right now (0 between batches): what a
    #: fault drill watches to kill a service provably mid-batch.
    in_flight: int = 0

    def count(self, topic: str, outcome: str) -> None:
        self.outcomes[(topic, outcome)] = self.outcomes.get((topic, outcome), 0) + 1


def should_linger(held: int, linger_below: int, streaming: bool) -> bool:
    """Wait once for more after a poll that brought ``held`` records (see
    ``ConsumerRunner._linger``): only a few, and the poll before brought some too."""
    return streaming and 0 < held < linger_below


def in_runs(chunk: list[_Prepared]) -> list[_Prepared]:
    """``chunk`` reordered so that events of one type stand together, each key's events
    still in their order (the only order Kafka promises and the handlers rely on).

    Events go into groups, each of one type and one layer; the groups are applied layer
    by layer. An event may not go into a layer before the one its key's previous event
    went into, nor into that same layer when its type differs: so a key's events of one
    layer share one group, its layers come in order, and its events keep their order;
    everything else may move. Within those bounds an event joins the earliest group of
    its type there is, and opens one only when there is none. A poll where two types
    alternate over different keys (reservations and stock levels, say) becomes two runs
    instead of dozens, each applied by its batch handler in one call. Never more runs
    than the chunk had: then it stays as it came.
    """
    last: dict[bytes | None, tuple[int, str]] = {}
    groups: dict[tuple[int, str], list[_Prepared]] = {}
    layers: dict[str, list[int]] = {}  # per type, the layers holding a group of it
    for item in chunk:
        event_type, key = item.envelope.event_type, item.message.key
        before = last.get(key)
        earliest = _earliest_layer(before, event_type)
        of_type = layers.setdefault(event_type, [])
        at = bisect.bisect_left(of_type, earliest)
        if at < len(of_type):
            layer = of_type[at]
        else:
            layer = earliest
            of_type.insert(at, layer)
        last[key] = (layer, event_type)
        groups.setdefault((layer, event_type), []).append(item)
    regrouped = [item for group in sorted(groups, key=lambda g: g[0]) for item in groups[group]]
    # Placing each event as it comes can split a type that a later event would have
    # kept together; the chunk is left as it was unless regrouping made fewer runs.
    return regrouped if _runs(regrouped) < _runs(chunk) else chunk


def _earliest_layer(before: tuple[int, str] | None, event_type: str) -> int:
    """The first layer an event may go into, after its key's previous one (``before``:
    that event's layer and type)."""
    if before is None:
        return 0
    layer, previous_type = before
    return layer if previous_type == event_type else layer + 1


def _runs(items: list[_Prepared]) -> int:
    """How many runs of one event type ``items`` makes (batch handler calls)."""
    return sum(
        1
        for i, item in enumerate(items)
        if i == 0 or items[i - 1].envelope.event_type != item.envelope.event_type
    )


class ConsumerRunner:
    def __init__(
        self,
        *,
        name: str,
        consumer: AIOKafkaConsumer,
        topics: list[str],
        handlers: dict[str, Handler],
        uow_factory: Callable[[Envelope | None], UnitOfWork],
        dlq_producer: AIOKafkaProducer,
        batch_handlers: dict[str, BatchHandler] | None = None,
        registry: EventRegistry = REGISTRY,
        max_attempts: int = 5,
        batch_max: int = 500,
        apply_batch_max: int = 250,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        linger_ms: float = 0.0,
        linger_below: int = 100,
        inbox: Inbox = INBOX_TABLE,
    ) -> None:
        self.name = name
        self._consumer = consumer
        self._topics = topics
        self._handlers = handlers
        self._batch_handlers = {t: h for t, h in (batch_handlers or {}).items() if t in handlers}
        self._uow_factory = uow_factory
        self._inbox = inbox
        self._dlq = dlq_producer
        self._registry = registry
        self._max_attempts = max_attempts
        self._batch_max = batch_max
        self._apply_batch_max = max(1, apply_batch_max)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._linger_s = max(0.0, linger_ms) / 1000
        self._linger_below = linger_below
        #: The last poll brought records: a stream is flowing (see ``_linger``).
        self._streaming = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.stats = ConsumerStats()

    async def start(self) -> None:
        self._consumer.subscribe(self._topics)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    async def stop(self) -> None:
        """Stop fetching, let the batch in hand finish and commit, then leave the group.
        A loop that had already died is stopped all the same (its death was reported by
        :meth:`wait`)."""
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._consumer.stop()

    async def wait(self) -> None:
        """Until the loop ends: returns after :meth:`stop`, raises what killed it otherwise
        (an error its own retries did not absorb, such as a dead-letter send that failed)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind the partition's high watermark, per owned partition."""
        lags: dict[tuple[str, int], int] = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            position = self.stats.positions.get((tp.topic, tp.partition))
            if position is None:
                continue
            lags[(tp.topic, tp.partition)] = max(highwater - position, 0)
        return lags

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=self._batch_max)
                streaming, self._streaming = self._streaming, bool(batches)
                held = sum(len(messages) for messages in batches.values())
                if self._linger_s and should_linger(held, self._linger_below, streaming):
                    batches = await self._linger(batches, held)
            except KafkaError:
                log.exception("fetch failed; retrying")
                await asyncio.sleep(1)
                continue
            owned = self._consumer.assignment()
            # Revoked meanwhile: the new owner takes those from here.
            mine = {tp: messages for tp, messages in batches.items() if tp in owned}
            if not mine:
                continue
            await self._process_poll(mine)
            offsets: dict[TopicPartition, int] = {}
            owned = self._consumer.assignment()
            for tp, messages in mine.items():
                if tp not in owned:
                    continue  # revoked while applying: the inbox absorbs the re-read
                offsets[tp] = messages[-1].offset + 1
                self.stats.positions[(tp.topic, tp.partition)] = messages[-1].offset + 1
            if offsets:
                await self._commit(offsets)

    async def _linger(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], held: int
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """Wait ``linger_ms`` once for more when a poll brought only a few records.

        Under a steady stream each poll holds the handful that arrived since the last one,
        and every transaction (inbox insert, handler statements, outbox insert, commit)
        costs about the same for one event as for a hundred: one short wait turns a
        trickle of tiny transactions into a few full ones. A full poll never waits, so a
        backlog is drained at full speed; nor does the first poll with records after an
        empty one, so a lone order in a quiet system is not held up at every hop; an idle
        consumer never waits either (nothing came).

        A longer wait did not pay: on the promotion day (double11 at 0.2, fourteen runs
        alternated) 100 ms gave 148-205 orders/s and 20 ms 143-193, the same within this
        machine's noise.
        """
        await asyncio.sleep(self._linger_s)
        more = await self._consumer.getmany(timeout_ms=0, max_records=self._batch_max - held)
        for tp, messages in more.items():
            batches.setdefault(tp, []).extend(messages)
        return batches

    async def _process_poll(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Apply a poll's messages in shared transactions (up to ``apply_batch_max``
        each), every partition's in its order.

        A poll holds a few messages of many partitions (a service reading four topics of
        four partitions gets sixteen small runs); a transaction per partition paid the
        fixed costs (begin, inbox, outbox, commit) sixteen times. Partitions follow one
        another, so each key's events (a key lives in one partition) keep their order.
        """
        prepared: list[_Prepared] = []
        for messages in batches.values():
            for message in messages:
                item = await self._prepare(message)
                if item is not None:  # else skipped or dead-lettered: nothing to apply
                    prepared.append(item)
        prepared = in_runs(prepared)
        for start in range(0, len(prepared), self._apply_batch_max):
            await self._apply_chunk(prepared[start : start + self._apply_batch_max])

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        owned = self._consumer.assignment()
        mine = {tp: off for tp, off in offsets.items() if tp in owned}
        if not mine:
            return
        try:
            await self._consumer.commit(mine)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # A rebalance took the partitions: the new owner re-reads from the last
            # committed offset and the inbox absorbs what this consumer already applied.
            log.warning("offset commit skipped: %s", exc)

    async def _prepare(self, message: ConsumerRecord[bytes, bytes]) -> _Prepared | None:
        """Parse ``message``; None when it is not ours (skipped) or poison (dead-lettered)."""
        self.stats.consumed += 1
        self.stats.by_topic[message.topic] = self.stats.by_topic.get(message.topic, 0) + 1
        try:
            envelope = Envelope.model_validate_json(message.value or b"")
        except ValidationError as exc:
            await self._dead_letter(
                message,
                f"unparseable envelope: {exc.errors(include_input=False, include_url=False)[:3]}",
                1,
            )
            return None
        handler = self._handlers.get(envelope.event_type)
        if handler is None:
            self.stats.skipped += 1
            self.stats.count(message.topic, "skipped")
            return None
        try:
            event = self._registry.parse(envelope)
        except (UnknownEventError, ValidationError) as exc:
            await self._dead_letter(message, f"cannot parse {envelope.event_type}: {exc}", 1)
            return None
        return _Prepared(message, envelope, event, handler)

    @contextlib.contextmanager
    def _span(self, item: _Prepared) -> Iterator[None]:
        """The message's correlation id and a consumer span continuing the producer's trace."""
        message, envelope = item.message, item.envelope
        token = correlation_id_var.set(envelope.correlation_id)
        try:
            if not tracing_enabled():
                yield
                return
            with tracer.start_as_current_span(
                f"consume {envelope.event_type}",
                context=context_from_headers(message.headers),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": message.topic,
                    "messaging.kafka.destination.partition": message.partition,
                    "messaging.kafka.message.offset": message.offset,
                    "messaging.consumer.group.name": self.name,
                    "oms.event_id": str(envelope.event_id),
                },
            ):
                yield
        finally:
            correlation_id_var.reset(token)

    async def _apply_chunk(self, chunk: list[_Prepared]) -> None:
        """Apply ``chunk`` in as few transactions as possible, in order.

        The chunk is tried as one transaction, runs of one event type going to their batch
        handler. If that fails, it is tried again event by event (each with its own
        handler) to find the message ``i`` that fails; then the messages before it are
        applied together, message ``i`` alone (with its retries, and the dead-letter topic
        if it is poison), then the rest together. So one poison message costs a replay,
        not the batching of the whole chunk, and per-key order is kept.
        """
        while chunk:
            if len(chunk) == 1:
                await self._apply_one(chunk[0])
                return
            failed_at = await self._try_together(chunk, batched=True)
            if failed_at is None:
                return
            if self._batch_handlers:
                failed_at = await self._try_together(chunk, batched=False)
                if failed_at is None:
                    return
            if failed_at >= len(chunk):  # the commit itself failed: go one by one
                for item in chunk:
                    await self._apply_one(item)
                return
            before = chunk[:failed_at]
            if before and await self._try_together(before, batched=True) is not None:
                for item in before:
                    await self._apply_one(item)
            await self._apply_one(chunk[failed_at])
            chunk = chunk[failed_at + 1 :]

    async def _try_together(self, chunk: list[_Prepared], *, batched: bool) -> int | None:
        """Apply ``chunk`` in one transaction; None on success, else the index that failed
        (``len(chunk)`` when the commit failed; the first of a run when a batch handler
        failed). Nothing is kept of a failed attempt."""
        outcomes: list[tuple[str, str]] = []
        index = 0
        self.stats.in_flight = len(chunk)
        try:
            async with self._uow_factory(None) as uow:
                fresh = await self._inbox.admit(uow, self.name, [i.envelope for i in chunk])
                position = 0
                while position < len(chunk):
                    index = position
                    item = chunk[position]
                    batch = self._batch_handlers.get(item.envelope.event_type) if batched else None
                    run = [item]
                    if batch is not None:
                        while (
                            position + len(run) < len(chunk)
                            and chunk[position + len(run)].envelope.event_type
                            == item.envelope.event_type
                        ):
                            run.append(chunk[position + len(run)])
                    applied: list[_Prepared] = []
                    for member in run:
                        if member.envelope.event_id in fresh:
                            fresh.discard(member.envelope.event_id)  # a second copy: duplicate
                            applied.append(member)
                        else:
                            outcomes.append((member.message.topic, "duplicate"))
                    if applied:
                        with self._span(applied[0]):
                            if batch is not None:
                                await batch(uow, [(m.envelope, m.event) for m in applied])
                            else:
                                uow.caused_by(item.envelope)
                                await item.handler(uow, item.envelope, item.event)
                        outcomes += [(m.message.topic, "applied") for m in applied]
                    position += len(run)
                index = len(chunk)
                await uow.commit()
        except Exception as exc:
            log.info(
                "batch of %d rolled back at message %d (%s)",
                len(chunk),
                index,
                type(exc).__name__,
            )
            return index
        finally:
            self.stats.in_flight = 0
        for topic, outcome in outcomes:
            if outcome == "duplicate":
                self.stats.duplicates += 1
            else:
                self.stats.applied += 1
            self.stats.count(topic, outcome)
        return None

    async def _apply_one(self, item: _Prepared) -> None:
        with self._span(item):
            await self._apply(item.message, item.envelope, item.event, item.handler)

    async def _apply(
        self,
        message: ConsumerRecord[bytes, bytes],
        envelope: Envelope,
        event: Event,
        handler: Handler,
    ) -> None:
        failures = 0
        transient_failures = 0
        while True:
            self.stats.in_flight = 1
            try:
                async with self._uow_factory(envelope) as uow:
                    admitted = await self._inbox.admit(uow, self.name, [envelope])
                    if envelope.event_id not in admitted:
                        self.stats.duplicates += 1
                        self.stats.count(message.topic, "duplicate")
                        return
                    await handler(uow, envelope, event)
                    await uow.commit()
                self.stats.applied += 1
                self.stats.count(message.topic, "applied")
                return
            except Exception as exc:
                if is_transient(exc):
                    transient_failures += 1
                    if self._stopping and transient_failures > 3:
                        raise  # shutting down: leave it uncommitted for redelivery
                    await self._backoff(transient_failures)
                    log.warning(
                        "transient failure applying %s, retrying: %s",
                        envelope.event_type,
                        type(exc).__name__,
                    )
                    continue
                failures += 1
                log.exception(
                    "handler failed for %s %s (attempt %d/%d)",
                    envelope.event_type,
                    envelope.event_id,
                    failures,
                    self._max_attempts,
                )
                if failures >= self._max_attempts:
                    await self._dead_letter(message, f"{type(exc).__name__}: {exc}", failures)
                    return
                await self._backoff(failures)
            finally:
                self.stats.in_flight = 0

    async def _backoff(self, attempt: int) -> None:
        delay = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
        await asyncio.sleep(delay * (0.5 + random.random() / 2))

    async def _dead_letter(
        self, message: ConsumerRecord[bytes, bytes], error: str, attempts: int
    ) -> None:
        """Park ``message`` on the dead-letter topic, acknowledged, before moving on."""
        headers = [
            *(message.headers or ()),
            ("dlq.origin_topic", message.topic.encode()),
            ("dlq.origin_partition", str(message.partition).encode()),
            ("dlq.origin_offset", str(message.offset).encode()),
            ("dlq.error", error[:2000].encode()),
            ("dlq.attempts", str(attempts).encode()),
            ("dlq.consumer", self.name.encode()),
        ]
        await self._dlq.send_and_wait(
            dead_letter_topic(message.topic),
            value=message.value,
            key=message.key,
            headers=headers,
        )
        self.stats.dead_lettered += 1
        self.stats.count(message.topic, "dead_lettered")
        log.error(
            "message dead-lettered",
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "error": error[:500],
            },
        )
