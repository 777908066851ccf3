"""aiokafka clients with the settings that work on Apache Kafka and on tansu alike.

No idempotent producer and no transactions (tansu refuses both, and they would not cover
the database anyway): acks=all plus the outbox and inbox give effectively-once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from oms_contracts.topics import dead_letter_topic

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    client_id: str
    partitions: int = 4
    replication_factor: int = 1
    #: Broker long-poll wait; latency is about half of it (tansu is not woken by new data).
    fetch_max_wait_ms: int = 20
    #: A poll of fewer than ``linger_below`` records waits this long once for more (see
    #: ``ConsumerRunner._linger``): fewer, fuller transactions under a steady stream.
    linger_ms: float = 0.0
    linger_below: int = 100
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 300_000


def create_producer(settings: KafkaSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=settings.client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        request_timeout_ms=30_000,
    )


def create_consumer(settings: KafkaSettings, group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=settings.client_id,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_poll_interval_ms=settings.max_poll_interval_ms,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )


async def ensure_topics(settings: KafkaSettings, topics: list[str]) -> None:
    """Create ``topics`` and their dead-letter topics if missing.

    Topics are created explicitly with the configured partition count: relying on
    auto-creation gives whatever the broker's default is.
    """
    wanted = sorted({*topics, *(dead_letter_topic(t) for t in topics)})
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id=f"{settings.client_id}-admin"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(
                    name=t,
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication_factor,
                )
                for t in missing
            ]
        )
        for topic_error in getattr(response, "topic_errors", []):
            name, code = topic_error[0], topic_error[1]
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"could not create topic {name}: error code {code}")
        log.info("topics created", extra={"topics": missing})
    finally:
        await admin.close()
