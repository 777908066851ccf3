"""The event runtime against a real broker and a real PostgreSQL.

What must hold: an event is published only after its transaction commits and marked
published only after the broker acknowledged it; per-key order is kept; a redelivered
event is applied once; poison goes to the dead-letter topic with its origin; a handler
that keeps failing is dead-lettered after N attempts while the partition moves on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, Table, Text, Uuid, func, select

from oms_contracts import Envelope, Event, make_envelope
from oms_contracts.events import AlertRaised
from oms_contracts.topics import Topic, dead_letter_topic
from oms_messaging import ConsumerRunner, OutboxRelay, UnitOfWork
from oms_messaging.kafka import KafkaSettings, create_consumer, create_producer, ensure_topics
from oms_messaging.tables import inbox, outbox
from oms_servicekit.testing import MigratedDatabase, migrated_database, read_topic

MIGRATIONS = Path(__file__).parent / "migrations"

# A table the test handlers write to: the "effect" of applying an event.
effects_md = MetaData()
effects = Table(
    "effects", effects_md, Column("event_id", Uuid, primary_key=True), Column("subject", Text)
)


def alert(subject: str, n: int = 0) -> AlertRaised:
    return AlertRaised(
        alert_id=uuid.uuid4(),
        alert_type="test",
        severity="info",
        subject=subject,
        message=f"message {n}",
        raised_at=datetime.now(UTC),
    )


@pytest.fixture
async def db() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, prefix="oms_msgtest") as database:
        async with database.engine.begin() as conn:
            await conn.run_sync(effects_md.create_all)
        yield database


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> KafkaSettings:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, client_id="msgtest")
    await ensure_topics(settings, [Topic.ALERTS.value])
    return settings


async def test_relay_publishes_committed_events_in_key_order_and_marks_them(
    db: MigratedDatabase, kafka: KafkaSettings
) -> None:
    subject = f"subject-{uuid.uuid4()}"
    async with db.uow() as uow:
        for n in range(30):
            await uow.emit(alert(subject, n))
        await uow.commit()
    async with db.uow() as uow:  # rolled back: must never be published
        await uow.emit(alert(subject, 999))

    producer = create_producer(kafka)
    await producer.start()
    try:
        relay = OutboxRelay(db.engine, producer, shards=4, batch_size=7)
        assert await relay.publish_pending() == 30
        assert await relay.publish_pending() == 0
    finally:
        await producer.stop()

    messages = await read_topic(kafka.bootstrap_servers, Topic.ALERTS.value, 30)
    mine = [Envelope.model_validate_json(m.value) for m in messages if m.key == subject.encode()]
    assert [e.payload["message"] for e in mine] == [f"message {n}" for n in range(30)]
    async with db.engine.connect() as conn:
        unpublished = await conn.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    assert unpublished == 0


async def test_relay_leaves_rows_unpublished_when_the_broker_does_not_acknowledge(
    db: MigratedDatabase,
) -> None:
    async with db.uow() as uow:
        await uow.emit(alert("nobody-listens"))
        await uow.commit()
    dead = KafkaSettings(bootstrap_servers="127.0.0.1:1", client_id="dead")
    producer = create_producer(dead)
    relay = OutboxRelay(db.engine, producer)
    with pytest.raises(Exception):  # noqa: B017 - any send failure will do
        async with asyncio.timeout(5):
            await relay.publish_pending()
    async with db.engine.connect() as conn:
        assert (
            await conn.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
            == 1
        )


class Recorder:
    """A handler that applies an effect, optionally failing for some subjects."""

    def __init__(self, fail_subjects: set[str] | None = None, echo: bool = False) -> None:
        self.calls: dict[str, int] = {}
        self.fail_subjects = fail_subjects or set()
        self.echo = echo

    async def __call__(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, AlertRaised)
        self.calls[event.subject] = self.calls.get(event.subject, 0) + 1
        if event.subject in self.fail_subjects:
            raise ValueError("this event can never be applied")
        await uow.session.execute(
            effects.insert().values(event_id=envelope.event_id, subject=event.subject)
        )
        if self.echo:  # an event caused by this one, to check the causation chain
            await uow.emit(alert(f"echo-{envelope.event_id}"))


class BatchRecorder:
    """A batch handler with the Recorder's effect: one multi-row insert for the run, and
    the whole run refused when any of it is poison (as a set-based statement would be)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.runs: list[int] = []

    async def __call__(self, uow: UnitOfWork, items: list[tuple[Envelope, Event]]) -> None:
        self.runs.append(len(items))
        subjects = [event.subject for _, event in items if isinstance(event, AlertRaised)]
        if set(subjects) & self.recorder.fail_subjects:
            raise ValueError("a run with poison in it cannot be applied")
        await uow.session.execute(
            effects.insert(),
            [
                {"event_id": e.event_id, "subject": s}
                for (e, _), s in zip(items, subjects, strict=True)
            ],
        )
        for envelope, _ in items:
            uow.caused_by(envelope)
            if self.recorder.echo:
                await uow.emit(alert(f"echo-{envelope.event_id}"))


async def start_runner(
    db: MigratedDatabase,
    kafka: KafkaSettings,
    handler: Recorder,
    topic: str,
    apply_batch_max: int = 50,
    batch_handler: BatchRecorder | None = None,
):
    await ensure_topics(kafka, [topic])
    producer = create_producer(kafka)
    await producer.start()
    runner = ConsumerRunner(
        name="msgtest-consumer",
        consumer=create_consumer(kafka, f"group-{uuid.uuid4()}"),
        topics=[topic],
        handlers={AlertRaised.event_type: handler},
        batch_handlers={AlertRaised.event_type: batch_handler} if batch_handler else None,
        uow_factory=db.uow,
        dlq_producer=producer,
        max_attempts=3,
        backoff_base=0.01,
        apply_batch_max=apply_batch_max,
    )
    await runner.start()
    return runner, producer


async def wait_until(predicate, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.1)


async def test_consumer_applies_a_redelivered_event_once_and_dead_letters_poison(
    db: MigratedDatabase, kafka: KafkaSettings
) -> None:
    subject = f"s-{uuid.uuid4()}"
    good = make_envelope(alert(subject), producer="test")
    doomed = make_envelope(alert("doomed"), producer="test")
    unknown_version = good.model_copy(update={"event_id": uuid.uuid4(), "schema_version": 99})
    handler = Recorder(fail_subjects={"doomed"})
    topic = f"msgtest.{uuid.uuid4().hex[:8]}"
    runner, producer = await start_runner(db, kafka, handler, topic)
    try:
        for value in (
            good.model_dump_json().encode(),
            good.model_dump_json().encode(),  # the same event delivered twice
            b"{not json",
            unknown_version.model_dump_json().encode(),
            doomed.model_dump_json().encode(),
        ):
            await producer.send_and_wait(topic, value, key=subject.encode())

        async def applied() -> bool:
            return runner.stats.dead_lettered == 3 and runner.stats.duplicates == 1

        await wait_until(applied)
    finally:
        await runner.stop()
        await producer.stop()

    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(effects.c.subject))).all()
        processed = await conn.scalar(select(func.count()).select_from(inbox))
    assert [r.subject for r in rows] == [subject]
    assert processed == 1
    assert handler.calls["doomed"] >= 3  # retried max_attempts times on its own

    dead = await read_topic(kafka.bootstrap_servers, dead_letter_topic(topic), 3)
    by_value = {m.value: dict(m.headers) for m in dead}
    assert by_value[b"{not json"]["dlq.origin_topic"] == topic.encode()
    assert b"unparseable" in by_value[b"{not json"]["dlq.error"]
    assert b"v99" in by_value[unknown_version.model_dump_json().encode()]["dlq.error"]
    assert by_value[doomed.model_dump_json().encode()]["dlq.attempts"] == b"3"


@pytest.mark.parametrize("set_based", [False, True], ids=["handler", "batch-handler"])
async def test_a_batch_is_applied_in_few_transactions_and_a_poison_message_in_it_alone(
    db: MigratedDatabase, kafka: KafkaSettings, set_based: bool
) -> None:
    """Forty events on one partition, a poison one among them, all waiting before the
    consumer starts (one fetch): the good ones are applied exactly once in shared
    transactions, the poison one is dead-lettered alone, and every event a handler emitted
    names the event that caused it."""
    topic = f"msgtest.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [topic])
    key = b"one-partition"
    envelopes = [make_envelope(alert(f"good-{n}", n), producer="test") for n in range(40)]
    doomed = make_envelope(alert("doomed"), producer="test")
    batch = [*envelopes[:20], doomed, *envelopes[20:]]
    producer = create_producer(kafka)
    await producer.start()
    try:
        for envelope in batch:
            await producer.send_and_wait(topic, envelope.model_dump_json().encode(), key=key)
    finally:
        await producer.stop()

    handler = Recorder(fail_subjects={"doomed"}, echo=True)
    batch_handler = BatchRecorder(handler) if set_based else None
    runner, dlq_producer = await start_runner(
        db, kafka, handler, topic, apply_batch_max=50, batch_handler=batch_handler
    )
    try:

        async def settled() -> bool:
            return runner.stats.applied == 40 and runner.stats.dead_lettered == 1

        await wait_until(settled)
    finally:
        await runner.stop()
        await dlq_producer.stop()

    async with db.engine.connect() as conn:
        subjects = sorted((await conn.execute(select(effects.c.subject))).scalars())
        commit_times = (
            await conn.execute(select(func.count(inbox.c.processed_at.distinct())))
        ).scalar()
        echoes = [
            Envelope.model_validate_json(payload)
            for payload in (await conn.execute(select(outbox.c.payload))).scalars()
        ]
    assert subjects == sorted(f"good-{n}" for n in range(40))
    # processed_at is the transaction's start time: fewer distinct values than events
    # means events shared transactions.
    assert commit_times is not None and commit_times < 40
    assert sorted(e.payload["subject"] for e in echoes) == sorted(
        f"echo-{e.event_id}" for e in envelopes
    )
    assert all(e.payload["subject"] == f"echo-{e.causation_id}" for e in echoes)
    dead = await read_topic(kafka.bootstrap_servers, dead_letter_topic(topic), 1)
    assert [m.value for m in dead] == [doomed.model_dump_json().encode()]
    if batch_handler is not None:
        # Runs went to the batch handler; the poison one made the runner find it event by
        # event, and the good ones after it were applied as a run again.
        assert max(batch_handler.runs) > 1
        assert handler.calls["doomed"] >= 3
        assert sum(1 for subject in handler.calls if subject.startswith("good-")) < 40


async def test_a_transaction_publishes_only_the_newest_snapshot_of_the_same_thing(
    db: MigratedDatabase,
) -> None:
    async with db.uow() as uow:
        await uow.emit(alert("level", 1), snapshot_of="level:SKU-1")
        await uow.emit(alert("other", 2))
        await uow.emit(alert("level", 3), snapshot_of="level:SKU-1")
        await uow.emit(alert("level", 4), snapshot_of="level:SKU-2")
        assert [e.payload["message"] for e in uow.emitted] == [
            "message 2",
            "message 3",
            "message 4",
        ]
        await uow.commit()
    async with db.engine.connect() as conn:
        payloads = (await conn.execute(select(outbox.c.payload).order_by(outbox.c.id))).scalars()
        messages = [Envelope.model_validate_json(p).payload["message"] for p in payloads]
    assert messages == ["message 2", "message 3", "message 4"]
