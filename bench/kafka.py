"""Broker-side tools: publish envelopes like the outbox relay does, watch a topic, and the
raw produce+consume round trip that is the broker's reference figure.

Watching uses a consumer without a group (partitions assigned by hand, from the
beginning): nothing to join, nothing committed, no effect on the services' groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.background import Background
from bench.harness import Stalled
from oms_contracts import Envelope
from oms_messaging.kafka import KafkaSettings, create_producer


def producer_settings(bootstrap: str, client_id: str = "bench") -> KafkaSettings:
    """The services' own client settings (acks=all, linger 2 ms), so the comparison is fair."""
    return KafkaSettings(bootstrap_servers=bootstrap, client_id=client_id)


async def publish(bootstrap: str, topic: str, envelopes: Iterable[Envelope]) -> float:
    """Publish ``envelopes`` as the outbox relay does; the perf_counter time of the first send.

    Envelopes are serialized before the clock starts; the call returns once every message
    is acknowledged.
    """
    messages = [
        (e.model_dump_json().encode(), e.key.encode(), e.event_type.encode()) for e in envelopes
    ]
    producer = create_producer(producer_settings(bootstrap, "bench-publisher"))
    await producer.start()
    try:
        await producer.partitions_for(topic)  # metadata fetched before the clock starts
        started = time.perf_counter()
        futures = [
            await producer.send(topic, value=v, key=k, headers=[("event_type", t)])
            for v, k, t in messages
        ]
        await asyncio.gather(*futures)
        return started
    finally:
        await producer.stop()


async def _assigned_consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="bench-watcher",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    try:
        partitions: set[int] | None = None
        for _ in range(50):
            await consumer.topics()  # refreshes metadata
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                break
            await asyncio.sleep(0.1)
        if not partitions:
            raise RuntimeError(f"topic {topic} has no partitions (does it exist?)")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


@dataclass
class Arrival:
    event_type: str
    at: float


@dataclass
class EventWatcher:
    """Everything that appears on ``topic``, by ``payload[key_field]``, with arrival times."""

    bootstrap: str
    topic: str
    key_field: str = "order_id"
    seen: dict[str, list[Arrival]] = field(default_factory=dict)
    _consumer: AIOKafkaConsumer | None = None
    _task: Background | None = None
    _progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> EventWatcher:
        self._consumer = await _assigned_consumer(self.bootstrap, self.topic)
        self._task = Background(self._run(), f"watch-{self.topic}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            await self._task.stop()
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=1000)
            now = time.perf_counter()
            for messages in batches.values():
                for message in messages:
                    try:
                        data = json.loads(message.value or b"")
                        key = str(data["payload"][self.key_field])
                    except (ValueError, KeyError, TypeError):
                        continue
                    self.seen.setdefault(key, []).append(Arrival(data["event_type"], now))
            if batches:
                self._progress.set()

    async def wait_for(self, keys: set[str], *, stall_s: float = 30.0) -> float:
        """Wait until every key has an event; the arrival time of the last first answer."""
        last_missing = len(keys)
        last_change = time.perf_counter()
        while True:
            missing = sum(1 for k in keys if k not in self.seen)
            if missing == 0:
                return max(self.seen[k][0].at for k in keys)
            if missing != last_missing:
                last_missing, last_change = missing, time.perf_counter()
            elif time.perf_counter() - last_change > stall_s:
                raise Stalled(f"{missing} of {len(keys)} answers missing after {stall_s:.0f}s")
            if self._task is not None:
                self._task.check()  # surfaces the watcher's error
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), 1.0)


@dataclass
class RoundTrip:
    messages: int
    message_bytes: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


async def produce_consume_round_trip(
    bootstrap: str, messages: int, message_bytes: int = 700, partitions: int = 4
) -> RoundTrip:
    """Raw broker limit: ``messages`` produced (acks=all) and consumed back, first send to
    last receipt, on a fresh topic with the services' partition count."""
    topic = f"bench.roundtrip.{secrets.token_hex(4)}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
        )
        payload = os.urandom(message_bytes // 2).hex().encode()
        keys = [secrets.token_hex(16).encode() for _ in range(messages)]
        consumer = await _assigned_consumer(bootstrap, topic)
        producer = create_producer(producer_settings(bootstrap, "bench-roundtrip"))
        await producer.start()
        try:
            await producer.partitions_for(topic)

            async def consume() -> float:
                received = 0
                while received < messages:
                    batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                    received += sum(len(m) for m in batches.values())
                return time.perf_counter()

            consuming = asyncio.create_task(consume())
            started = time.perf_counter()
            futures = [await producer.send(topic, value=payload, key=k) for k in keys]
            await asyncio.gather(*futures)
            finished = await asyncio.wait_for(consuming, timeout=120)
        finally:
            await producer.stop()
            await consumer.stop()
        return RoundTrip(messages, len(payload), finished - started)
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
        await admin.close()
