"""A second, independent Kafka client (librdkafka via confluent-kafka) reads the topics
of the first flow and every message must validate against the committed JSON Schemas.

This proves the wire format is what the contracts say, independent of aiokafka and of
pydantic: any Kafka client in any language can consume our topics from the schemas.
"""

from __future__ import annotations

import asyncio
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from oms_contracts.topics import Topic
from oms_contracts.validation import validate_wire_message
from tests.e2e.conftest import Oms, eventually, order_body

FIRST_FLOW_TOPICS = [Topic.CHANNEL_ORDERS, Topic.ORDERS, Topic.RESERVATIONS, Topic.CUSTOMERS]


def read_all(
    bootstrap: str, topics: list[str], idle_s: float = 3.0
) -> list[tuple[str, bytes, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"wire-check-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    # Explicit assignment from the beginning: reading needs no consumer group.
    metadata = consumer.list_topics(timeout=10)
    consumer.assign(
        [
            TopicPartition(topic, partition, OFFSET_BEGINNING)
            for topic in topics
            for partition in metadata.topics[topic].partitions
        ]
    )
    messages: list[tuple[str, bytes, bytes]] = []
    idle = 0.0
    try:
        while idle < idle_s:
            msg = consumer.poll(0.5)
            if msg is None:
                idle += 0.5
                continue
            if msg.error():
                raise AssertionError(f"consumer error: {msg.error()}")
            idle = 0.0
            messages.append((msg.topic(), msg.key(), msg.value()))
    finally:
        consumer.close()
    return messages


async def test_every_message_of_the_first_flow_matches_the_committed_schemas(
    oms: Oms, kafka_bootstrap: str
) -> None:
    sku = await oms.new_sku({"WH-BJ": 3})
    accepted = await oms.post_order("live", order_body(sku))
    rejected = await oms.post_order("live", order_body(sku, qty=9))
    for r, state in ((accepted, "routed"), (rejected, "exception")):
        await eventually(
            lambda r=r: oms.find_order(r.json()["order_ref"]), lambda o, s=state: o["state"] == s
        )
    await eventually(
        lambda: oms.find_order(accepted.json()["order_ref"]), lambda o: o["customer_id"]
    )

    messages = await asyncio.to_thread(
        read_all, kafka_bootstrap, [t.value for t in FIRST_FLOW_TOPICS]
    )
    seen_types = set()
    for topic, key, value in messages:
        envelope = validate_wire_message(value, topic=topic, key=key.decode())
        seen_types.add(envelope.event_type)
    assert {
        "OrderReceived",
        "OrderCreated",
        "OrderPaid",
        "OrderStatusChanged",
        "OrderConfirmed",
        "StockReserved",
        "StockRejected",
        "CustomerResolved",
        "CustomerUpdated",
    } <= seen_types
