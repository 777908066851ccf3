"""The private tansu broker starts fast and behaves like Kafka for aiokafka."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from oms_devstack import free_port, port_is_free
from oms_devstack.broker import Broker


async def test_broker_round_trip(tmp_path: Path) -> None:
    broker = Broker(free_port(), tmp_path / "broker.log")
    await broker.start()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("devstack.test", 1, 1)])
        finally:
            await admin.close()

        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("devstack.test", b"hello", key=b"k")
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition("devstack.test", 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            message = await asyncio.wait_for(consumer.getone(), timeout=10)
        finally:
            await consumer.stop()
        assert (message.key, message.value) == (b"k", b"hello")
    finally:
        await broker.stop()
    assert port_is_free(broker.port)
    await broker.stop()  # idempotent
