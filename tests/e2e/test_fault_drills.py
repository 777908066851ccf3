"""Fault drills (issue 10): while orders flow, the infrastructure fails in turn.

One stack with its own broker (it gets frozen) and the fake credit bureau (it hangs for
the whole drill). Orders are posted in waves while, one after the other: the broker is
frozen (SIGSTOP) for 20 s and resumed, every database connection of the stack is cut for a
few seconds, and poison messages (invalid JSON, an unknown schema version) land on every
topic. (Services killed mid-batch: see test_chaos_drill.py.) Afterwards every
accepted order is in a known state, stock is not oversold and agrees with the orders
exactly (an event applied twice or lost would break that), and the dead-letter topics
hold only the poison the drill injected.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from oms_contracts import make_envelope
from oms_contracts.events import AlertRaised
from oms_contracts.topics import Topic, dead_letter_topic
from oms_devstack.dburl import with_database
from oms_devstack.specs import DEFAULT_SERVICES, FAKE_CREDIT_BUREAU
from oms_devstack.stack import Stack
from tests.e2e.conftest import Oms, assert_consistent, eventually, order_body

STOCK = 36
WAVE = 15
#: The credit check's budget in the drill: short, so hanging-bureau orders move on quickly.
CREDIT_BUDGET_S = 2.0


@pytest.fixture(scope="module")
async def drill_stack(artifacts_dir: Path) -> AsyncIterator[Stack]:
    stack = Stack.for_tests(
        artifacts_dir / "e2e-drill-stack", services=(*DEFAULT_SERVICES, FAKE_CREDIT_BUREAU)
    )
    stack.config.service_env["order-svc"] = {
        "CREDIT_CHECK_URL": stack.url("credit-bureau") + "/credit/check",
        # The drill sends retail orders; it is about the credit check under faults.
        "CREDIT_CHECK_EVERY_ORDER": "true",
        "CREDIT_CHECK_BUDGET_S": str(CREDIT_BUDGET_S),
        "CREDIT_CHECK_ATTEMPT_TIMEOUT_S": "0.5",
        "CREDIT_CHECK_BACKOFF_INITIAL_S": "0.05",
        "CREDIT_CHECK_BACKOFF_MAX_S": "0.2",
    }
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop(drop_databases=True)


def poison_messages() -> dict[str, list[bytes]]:
    """Per topic: a message that is not JSON, and a known event of an unknown version."""
    poison: dict[str, list[bytes]] = {}
    for topic in Topic:
        envelope = make_envelope(
            AlertRaised(
                alert_id=uuid.uuid4(),
                alert_type="drill",
                severity="info",
                subject=f"poison-{topic.value}",
                message="an event from the future",
                raised_at=datetime.now(UTC),
            ),
            producer="drill",
        ).model_copy(update={"schema_version": 99})
        poison[topic.value] = [
            f"{{not json on {topic.value}".encode(),
            envelope.model_dump_json().encode(),
        ]
    return poison


async def inject(bootstrap: str, poison: dict[str, list[bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, values in poison.items():
            for value in values:
                await producer.send_and_wait(topic, value, key=b"drill-poison")
    finally:
        await producer.stop()


async def read_dead_letters(bootstrap: str) -> list[bytes]:
    """Everything on every dead-letter topic, read until the topics go quiet."""
    consumer = AIOKafkaConsumer(
        *(dead_letter_topic(t.value) for t in Topic),
        bootstrap_servers=bootstrap,
        group_id=f"drill-reader-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    quiet = 0
    try:
        while quiet < 6:
            batch = await consumer.getmany(timeout_ms=500)
            got = [m.value or b"" for msgs in batch.values() for m in msgs]
            values.extend(got)
            quiet = 0 if got else quiet + 1
    finally:
        await consumer.stop()
    return values


async def cut_database_connections(stack: Stack, seconds: float) -> int:
    """Terminate every backend of the stack's databases, repeatedly, for ``seconds``."""
    conn = await asyncpg.connect(with_database(stack.database_url, "postgres"))
    names = [stack.db_name(n) for n in stack.names if n != "credit-bureau"]
    killed = 0
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            killed += len(
                await conn.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = ANY($1::text[]) AND pid <> pg_backend_pid()",
                    names,
                )
            )
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return killed


async def test_orders_survive_broker_freeze_db_cuts_kills_and_poison(
    drill_stack: Stack, http: httpx.AsyncClient
) -> None:
    oms = Oms(drill_stack, http)
    await oms.setup_catalogue()
    bureau = drill_stack.url("credit-bureau")
    r = await http.post(f"{bureau}/control", json={"mode": "hang"})
    assert r.status_code == 200, r.text
    sku = await oms.new_sku({"WH-SH": STOCK})
    accepted: list[str] = []

    async def wave() -> None:
        """Post WAVE orders; a 503 (database cut) is retried as a channel would."""

        async def one() -> None:
            body = order_body(sku)
            for _ in range(60):
                try:
                    r = await oms.post_order("web", body)
                except httpx.TransportError:
                    r = None
                if r is not None and r.status_code in (200, 202):
                    accepted.append(str(r.json()["order_ref"]))
                    return
                assert r is None or r.status_code == 503, r.text
                await asyncio.sleep(0.5)
            raise AssertionError("the gateway never accepted the order")

        await asyncio.gather(*(one() for _ in range(WAVE)))

    broker = drill_stack.broker
    assert broker is not None and broker.process is not None

    # 1. The broker freezes for 20 s while orders keep coming (the gateway stores them).
    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        await wave()
        await asyncio.sleep(20)
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)

    # 2. Database connections cut for a few seconds, mid-wave.
    posting = asyncio.create_task(wave())
    assert await cut_database_connections(drill_stack, 4.0) > 0
    await posting

    # 3. Poison on every topic, between two waves.
    poison = poison_messages()
    await inject(drill_stack.kafka_bootstrap, poison)
    await wave()

    assert len(accepted) == 3 * WAVE

    async def states() -> list[str | None]:
        orders = await asyncio.gather(*(oms.find_order(ref) for ref in accepted))
        return [o["state"] for o in orders]

    final = await eventually(
        states, lambda s: all(x in ("routed", "exception") for x in s), timeout=180
    )
    # Not oversold, and stock agrees exactly with the routed (reserved) orders.
    assert final.count("routed") == STOCK
    assert final.count("exception") == len(accepted) - STOCK
    stock = await oms.stock(sku)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (STOCK, STOCK, 0)
    # Every order went on at the credit budget despite the hanging bureau.
    sample = await oms.order(accepted[0])
    assert sample["credit_degraded"] is True

    # The dead-letter topics hold the injected poison and nothing else.
    dead = await read_dead_letters(drill_stack.kafka_bootstrap)
    injected = {value for values in poison.values() for value in values}
    assert set(dead) <= injected, [d[:80] for d in set(dead) - injected]
    not_json = {values[0] for values in poison.values()}
    assert not_json <= set(dead)  # every topic has a consumer that parked its poison

    # And order-svc's own check agrees: every order's state matches the stock held.
    await assert_consistent(oms)
