"""Trace context crosses Kafka: the consumer's span continues the emitter's trace."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from oms_contracts import Envelope, Event
from oms_contracts.events import AlertRaised
from oms_contracts.topics import Topic
from oms_messaging import ConsumerRunner, OutboxRelay, UnitOfWork
from oms_messaging.kafka import KafkaSettings, create_consumer, create_producer, ensure_topics
from oms_servicekit.testing import MigratedDatabase, migrated_database

MIGRATIONS = Path(__file__).parent / "migrations"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
async def db() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, prefix="oms_tracetest") as database:
        yield database


async def test_a_consumed_event_continues_the_trace_of_the_request_that_emitted_it(
    db: MigratedDatabase, kafka_bootstrap: str, spans: InMemorySpanExporter
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, client_id="tracetest")
    await ensure_topics(kafka, [Topic.ALERTS.value])
    subject = f"traced-{uuid.uuid4()}"
    tracer = trace.get_tracer("test")

    with tracer.start_as_current_span("POST /webhooks/web") as request_span:
        origin_trace = request_span.get_span_context().trace_id
        async with db.uow() as uow:
            await uow.emit(
                AlertRaised(
                    alert_id=uuid.uuid4(),
                    alert_type="t",
                    severity="info",
                    subject=subject,
                    message="m",
                    raised_at=datetime.now(UTC),
                )
            )
            await uow.commit()

    producer = create_producer(kafka)
    await producer.start()
    seen: dict[str, int] = {}

    async def handler(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, AlertRaised)
        seen[event.subject] = trace.get_current_span().get_span_context().trace_id

    runner = ConsumerRunner(
        name="tracetest",
        consumer=create_consumer(kafka, f"trace-{uuid.uuid4()}"),
        topics=[Topic.ALERTS.value],
        handlers={AlertRaised.event_type: handler},
        uow_factory=db.uow,
        dlq_producer=producer,
    )
    try:
        assert await OutboxRelay(db.engine, producer).publish_pending() == 1
        await runner.start()
        async with asyncio.timeout(20):
            while subject not in seen:
                await asyncio.sleep(0.1)
    finally:
        await runner.stop()
        await producer.stop()

    assert seen[subject] == origin_trace
    consumer_spans = [
        s
        for s in spans.get_finished_spans()
        if s.name == "consume AlertRaised" and s.context.trace_id == origin_trace
    ]
    assert len(consumer_spans) == 1
    assert consumer_spans[0].parent is not None
    assert consumer_spans[0].parent.span_id == request_span.get_span_context().span_id
