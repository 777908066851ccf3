"""A messaging spine that cannot wedge, against a real broker and a real PostgreSQL.

- The relay parks an event it can never publish (over our size limit, or refused by the
  Kafka client for good) and goes on with the rows after it and with the other shards;
  an error nobody foresaw parks the row after a few tries, a broker that is away never
  parks anything (its shard waits while the other shards go on).
- An event over the size limit is refused where it is built: nothing is written.
- A consumer loop that dies on an error its retries do not absorb makes the service
  unready (/readyz 503) and is restarted, however long the broker stays away;
  readiness comes back when it runs again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import func, select, text

from oms_contracts import Envelope, Event, make_envelope
from oms_contracts.events import AlertRaised
from oms_contracts.topics import Topic
from oms_messaging import ConsumerRunner, EventTooLarge, OutboxRelay, UnitOfWork
from oms_messaging.kafka import KafkaSettings, create_producer, ensure_topics
from oms_messaging.tables import outbox
from oms_servicekit.http import create_app
from oms_servicekit.metrics import RuntimeCollector
from oms_servicekit.runtime import ConsumerSpec, ServiceRuntime
from oms_servicekit.testing import MigratedDatabase, migrated_database, read_topic

MIGRATIONS = Path(__file__).parent / "migrations"


def alert(subject: str, message: str = "m") -> AlertRaised:
    return AlertRaised(
        alert_id=uuid.uuid4(),
        alert_type="test",
        severity="info",
        subject=subject,
        message=message,
        raised_at=datetime.now(UTC),
    )


@pytest.fixture
async def db() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, prefix="oms_spine") as database:
        yield database


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> KafkaSettings:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, client_id="spine")
    await ensure_topics(settings, [Topic.ALERTS.value])
    return settings


async def keys_on_topic(bootstrap: str, topic: str, prefix: str) -> set[str]:
    """The keys starting with ``prefix`` on ``topic`` (read to its end, as a new group)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: set[str] = set()
    try:
        quiet = 0
        while quiet < 3:  # three empty polls in a row: the end of the topic
            batches = await consumer.getmany(timeout_ms=500)
            quiet = 0 if batches else quiet + 1
            for messages in batches.values():
                seen |= {m.key.decode() for m in messages if m.key}
    finally:
        await consumer.stop()
    return {key for key in seen if key.startswith(prefix)}


async def outbox_state(db: MigratedDatabase) -> dict[str, list[Any]]:
    async with db.session_factory() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
    return {
        "published": [r.key for r in rows if r.published_at is not None],
        "parked": [(r.key, r.park_reason) for r in rows if r.parked_at is not None],
        "waiting": [r.key for r in rows if r.published_at is None and r.parked_at is None],
    }


async def test_the_relay_parks_what_it_can_never_publish_and_goes_on(
    db: MigratedDatabase, kafka: KafkaSettings
) -> None:
    run = uuid.uuid4().hex[:8]
    keys = [f"{run}-{n}" for n in range(12)]  # spread over the four shards
    huge, refused = f"{run}-huge", f"{run}-refused"
    async with db.uow() as uow:
        for key in keys[:6]:
            await uow.emit(alert(key))
        # Written by a unit of work with a higher limit: over the relay's own limit.
        await uow.emit(alert(huge, "x" * 30_000))
        # Under the relay's limit, over what the Kafka client may send: refused for good.
        await uow.emit(alert(refused, "y" * 6_000))
        for key in keys[6:]:
            await uow.emit(alert(key))
        await uow.commit()

    producer = create_producer(kafka)
    producer._max_request_size = 5_000
    await producer.start()
    try:
        relay = OutboxRelay(db.engine, producer, shards=4, batch_size=50, max_event_bytes=20_000)
        assert await relay.publish_pending() == 14
        assert await relay.publish_pending() == 0  # nothing left, nothing retried
    finally:
        await producer.stop()

    state = await outbox_state(db)
    assert sorted(state["published"]) == sorted(keys)
    assert state["waiting"] == []
    parked = dict(state["parked"])
    assert set(parked) == {huge, refused}
    assert parked[huge].startswith("EventTooLarge")
    assert parked[refused].startswith("MessageSizeTooLargeError")
    assert relay.parked_total == 2
    assert await keys_on_topic(kafka.bootstrap_servers, Topic.ALERTS.value, run) == set(keys)

    class _Runtime:  # what the metrics collector reads of a runtime
        service_name = "spine"
        engine = db.engine
        consumers: list[Any] = []
        relay = None

    collector = RuntimeCollector(_Runtime(), [])  # type: ignore[arg-type]
    await collector.refresh()
    assert collector.snapshot.outbox_parked == 2
    assert collector.snapshot.outbox_backlog == 0

    # A scrape within the snapshot's age reads nothing; a scrape after it reads again.
    kept = RuntimeCollector(_Runtime(), [], max_age_s=3600)  # type: ignore[arg-type]
    await kept.refresh()
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO outbox (event_id, topic, key, event_type, payload)"
                " VALUES (gen_random_uuid(), 'oms.alerts', 'k', 'AlertRaised', '{}')"
            )
        )
    await kept.refresh()
    await collector.refresh()
    assert kept.snapshot.outbox_backlog == 0
    assert collector.snapshot.outbox_backlog == 1


class _FailingProducer(AIOKafkaProducer):
    """A real producer whose sends of events whose payload holds a marker fail with the
    error given for that marker (what no broker can be made to do on demand)."""

    def __init__(self, failures: dict[bytes, BaseException], **config: Any) -> None:
        super().__init__(**config)
        self.failures = failures
        self.calls: dict[bytes, int] = {}

    async def send(self, topic: str, value: Any = None, key: Any = None, **kwargs: Any) -> Any:
        for marker, error in self.failures.items():
            if value is not None and marker in value:
                self.calls[marker] = self.calls.get(marker, 0) + 1
                raise error
        return await super().send(topic, value, key, **kwargs)


async def shard_of(db: MigratedDatabase, key: str, shards: int) -> int:
    async with db.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT (hashtext(:key) & 2147483647) % :shards"),
            {"key": key, "shards": shards},
        )
        return int(result.scalar_one())


async def test_an_unforeseen_error_parks_after_n_tries_and_a_broker_away_parks_nothing(
    db: MigratedDatabase, kafka: KafkaSettings
) -> None:
    run = uuid.uuid4().hex[:8]
    keys = [f"{run}-{n}" for n in range(12)]
    away = f"{run}-away"
    # The failing key must sit in another shard than the broker-away one, or it would
    # wait behind it and never be tried (the keys are random per run).
    held = await shard_of(db, away, 4)
    odd = ""
    for n in range(100):
        odd = f"{run}-odd{n}"
        if await shard_of(db, odd, 4) != held:
            break
    # And the keys must span the held shard and others (random keys may all miss it).
    while all([await shard_of(db, key, 4) != held for key in keys]):
        keys.append(f"{run}-{len(keys)}")
    async with db.uow() as uow:
        await uow.emit(alert(away, "broker-away"))  # first: its shard waits behind it
        await uow.emit(alert(odd, "codec-bomb"))
        for key in keys:
            await uow.emit(alert(key))
        await uow.emit(alert(odd, "after the bomb"))  # same key, after the failing one
        await uow.commit()
    others = [key for key in keys if await shard_of(db, key, 4) != held]
    assert others and len(others) < len(keys)  # the keys span the held shard and others

    failures: dict[bytes, BaseException] = {
        b"broker-away": KafkaConnectionError("the broker is away"),
        b"codec-bomb": ValueError("the codec exploded"),
    }
    producer = _FailingProducer(failures, bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        relay = OutboxRelay(db.engine, producer, shards=4, max_send_attempts=2)

        async def parked_odd_and_away_tried_often() -> bool:
            await relay.publish_pending()
            parked = dict((await outbox_state(db))["parked"])
            return odd in parked and producer.calls.get(b"broker-away", 0) > 3

        await _eventually(parked_odd_and_away_tried_often, bool)
        state = await outbox_state(db)
        # The unforeseen error was given two tries, then parked; the broker being away
        # parked nothing however often it failed; the other shards went on meanwhile.
        assert state["parked"] == [
            (odd, "failed 2 times in a row, last: ValueError: the codec exploded")
        ]
        assert away in state["waiting"]
        assert set(others) <= set(state["published"])

        del failures[b"broker-away"]  # the broker is back

        async def all_sent() -> dict[str, list[Any]]:
            await relay.publish_pending()
            return await outbox_state(db)

        state = await _eventually(all_sent, lambda state: not state["waiting"])
        assert sorted(state["published"]) == sorted([away, *keys, odd])
        assert relay.parked_total == 1
    finally:
        await producer.stop()
    expected = {away, odd, *keys}
    assert await keys_on_topic(kafka.bootstrap_servers, Topic.ALERTS.value, run) == expected


async def test_an_event_over_the_limit_is_refused_where_it_is_built(
    db: MigratedDatabase,
) -> None:
    async with UnitOfWork(db.session_factory, producer="spine", max_event_bytes=2_000) as uow:
        await uow.emit(alert("small"))
        with pytest.raises(EventTooLarge, match=r"AlertRaised is \d+ bytes serialized"):
            await uow.emit(alert("big", "z" * 3_000))
    async with db.session_factory() as session:
        assert (await session.execute(select(func.count()).select_from(outbox))).scalar() == 0


# -- a consumer loop that dies -----------------------------------------------------------


async def test_a_dead_consumer_loop_makes_the_service_unready_and_comes_back(
    db: MigratedDatabase,
    kafka: KafkaSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = f"oms.spine.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [topic, f"{topic}.dlq"])
    applied: list[str] = []

    async def handler(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, AlertRaised)
        applied.append(event.subject)

    settings = db.settings.model_copy(update={"kafka_bootstrap_servers": kafka.bootstrap_servers})
    runtime = ServiceRuntime(
        settings,
        service_name="spine",
        migrations_dir=MIGRATIONS,
        consumers=[ConsumerSpec(f"spine-{topic}", [topic], {"AlertRaised": handler})],
    )
    app = create_app(title="spine", runtime=runtime, routers=[])
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://spine"
        ) as client:
            assert (await client.get("/readyz")).status_code == 200

            # The dead-letter send of a poison message fails once: an error the loop's
            # own retries do not absorb.
            producer = runtime._state.producer
            assert producer is not None
            real_send = producer.send_and_wait
            failures = {"left": 1}

            async def failing_send(*args: Any, **kwargs: Any) -> Any:
                if failures["left"]:
                    failures["left"] -= 1
                    raise ConnectionError("the broker went away mid-send")
                return await real_send(*args, **kwargs)

            producer.send_and_wait = failing_send  # type: ignore[method-assign]
            caplog.set_level(logging.ERROR, logger="oms_servicekit.runtime")
            await real_send(topic, b"not an envelope", key=b"poison")

            async def readiness() -> int:
                return (await client.get("/readyz")).status_code

            await _eventually(readiness, lambda status: status == 503)
            died = [r for r in caplog.records if "died" in r.getMessage()]
            assert died and "the broker went away mid-send" in died[0].getMessage()

            # The loop comes back: the poison goes to the dead-letter topic this time and
            # the next message is applied; the service is ready again.
            good = alert("after-the-death")
            envelope = make_envelope(good, producer="test")
            await real_send(topic, envelope.model_dump_json().encode(), key=b"k")
            await _eventually(lambda: _value(applied), lambda seen: "after-the-death" in seen)
            await _eventually(readiness, lambda status: status == 200)
            dead = await read_topic(kafka.bootstrap_servers, f"{topic}.dlq", 1)
            assert dead[0].value == b"not an envelope"
    finally:
        await runtime.stop()


class _RestartsMeetABrokerAway(ServiceRuntime):
    """A runtime whose new consumers cannot join the group until ``away_until`` (loop
    time): the broker is still away when a dead loop is restarted."""

    away_until = 0.0

    def _new_runner(self, spec: ConsumerSpec) -> ConsumerRunner:
        runner = super()._new_runner(spec)
        if asyncio.get_running_loop().time() < self.away_until:

            async def cannot_join() -> None:
                raise KafkaConnectionError("the broker is still away")

            runner.start = cannot_join  # type: ignore[method-assign]
        return runner


async def test_a_dead_consumer_loop_is_restarted_however_long_the_broker_stays_away(
    db: MigratedDatabase, kafka: KafkaSettings
) -> None:
    topic = f"oms.spine.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [topic, f"{topic}.dlq"])
    applied: list[str] = []

    async def handler(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, AlertRaised)
        applied.append(event.subject)

    # Start-up gives up on the broker after a second; a restart must not.
    settings = db.settings.model_copy(
        update={"kafka_bootstrap_servers": kafka.bootstrap_servers, "startup_timeout_s": 1.0}
    )
    runtime = _RestartsMeetABrokerAway(
        settings,
        service_name="spine",
        migrations_dir=MIGRATIONS,
        consumers=[ConsumerSpec(f"spine-{topic}", [topic], {"AlertRaised": handler})],
    )
    await runtime.start()
    try:
        producer = runtime._state.producer
        assert producer is not None
        real_send = producer.send_and_wait

        async def dead_letter_fails(*args: Any, **kwargs: Any) -> Any:
            producer.send_and_wait = real_send  # type: ignore[method-assign]
            raise ConnectionError("the broker went away mid-send")

        producer.send_and_wait = dead_letter_fails  # type: ignore[method-assign]
        runtime.away_until = asyncio.get_running_loop().time() + 3.0
        await real_send(topic, b"not an envelope", key=b"poison")

        async def consumers_ready() -> bool:
            return (await runtime.check_ready())["consumers"]

        await _eventually(consumers_ready, lambda ready: not ready)
        good = make_envelope(alert("after-the-outage"), producer="test")
        await real_send(topic, good.model_dump_json().encode(), key=b"k")
        await _eventually(lambda: _value(applied), lambda seen: "after-the-outage" in seen)
        await _eventually(consumers_ready, bool)
    finally:
        await runtime.stop()
    assert not any(runner.running for runner in runtime.consumers)


async def _value(value: Any) -> Any:
    return value


async def _eventually(probe: Any, check: Any, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not met within {timeout}s; last value {value!r}")
        await asyncio.sleep(0.2)
