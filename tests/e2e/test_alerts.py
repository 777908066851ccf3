"""Alerts end to end: notifier as a real process, events over the real broker, a real
webhook target and a real SMTP server in this test process.

An operator subscribes a webhook and an e-mail address; an SLA breach arrives twice (a
redelivery) and again as the order's exception event: one alert, delivered once to each
target (the webhook after one failed attempt, signed with the subscription's secret),
then acknowledged.
"""

from __future__ import annotations

import asyncio
import email
import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from notifier.domain.delivery import verify
from oms_contracts import Envelope, make_envelope, topic_for
from oms_contracts.events import OrderExceptionRaised, SlaBreached
from oms_devstack.broker import Broker
from oms_devstack.ports import free_port
from oms_devstack.specs import NOTIFIER
from oms_devstack.stack import Stack
from oms_messaging.kafka import KafkaSettings, create_producer

DEADLINE_S = 60.0


class Target:
    """A webhook receiver that answers 500 to the first request, then 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                target.requests.append((dict(self.headers.items()), body))
                self.send_response(500 if len(target.requests) == 1 else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oms-alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[int, Mailbox]]:
    box = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


@pytest.fixture(scope="module")
async def kafka_bootstrap(artifacts_dir: Path) -> AsyncIterator[str]:
    """A broker of this module's own: the session's stack has a notifier in the same
    consumer group, which would take half the partitions (and the events) if both were on
    one broker, whenever the session stack was started by a module that ran before."""
    broker = Broker(free_port(), artifacts_dir / "e2e-alerts-broker.log")
    await broker.start()
    try:
        yield broker.bootstrap
    finally:
        await broker.stop()


@pytest.fixture(scope="module")
async def notifier(
    kafka_bootstrap: str, artifacts_dir: Path, mailbox: tuple[int, Mailbox]
) -> AsyncIterator[str]:
    port, _ = mailbox
    stack = Stack.for_tests(
        artifacts_dir / "e2e-alerts",
        services=[NOTIFIER],
        kafka_bootstrap=kafka_bootstrap,
        service_env={
            "notifier": {
                "SMTP_URL": f"smtp://127.0.0.1:{port}",
                "DELIVERY_BACKOFF_BASE_S": "0.1",
                "DELIVERY_BACKOFF_CAP_S": "0.5",
                "DELIVERY_WORKER_INTERVAL_S": "0.1",
            }
        },
    )
    await stack.start()
    try:
        yield stack.url("notifier")
    finally:
        await stack.stop(drop_databases=True)


async def publish(kafka_bootstrap: str, *envelopes: Envelope) -> None:
    producer = create_producer(KafkaSettings(kafka_bootstrap, client_id="e2e-alerts"))
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(
                topic_for(envelope.event_type).value,
                value=envelope.model_dump_json().encode(),
                key=envelope.key.encode(),
            )
    finally:
        await producer.stop()


async def test_an_sla_breach_is_alerted_once_per_target_signed_and_acknowledged(
    notifier: str, kafka_bootstrap: str, mailbox: tuple[int, Mailbox]
) -> None:
    _, box = mailbox
    target = Target()
    operator = {"X-Operator": "e2e-ops"}
    try:
        async with httpx.AsyncClient(base_url=notifier, timeout=30) as http:
            hook = await http.post(
                "/subscriptions",
                json={
                    "event_types": ["SlaBreached", "OrderExceptionRaised"],
                    "filter": {"channel": "web"},
                    "target": {"type": "webhook", "url": target.url},
                },
                headers=operator,
            )
            assert hook.status_code == 201, hook.text
            secret = hook.json()["secret"]
            mail = await http.post(
                "/subscriptions",
                json={
                    "event_types": ["SlaBreached"],
                    "target": {"type": "email", "address": "logistics@example.com"},
                },
                headers=operator,
            )
            assert mail.status_code == 201, mail.text

            order_id = uuid.uuid4()
            now = datetime.now(UTC)
            breach = make_envelope(
                SlaBreached(
                    order_id=order_id,
                    channel="web",
                    order_class="standard",
                    stage="ship",
                    deadline=now,
                    raised_at=now,
                ),
                producer="order-svc",
            )
            exception = make_envelope(
                OrderExceptionRaised(
                    exception_id=uuid.uuid4(),
                    order_id=order_id,
                    channel="web",
                    cause="sla_breached",
                    raised_at=now,
                ),
                producer="order-svc",
            )
            await publish(kafka_bootstrap, breach, breach, exception)

            alert: dict[str, Any] = {}
            async with asyncio.timeout(DEADLINE_S):
                while not (alert.get("delivery_state") == "delivered" and box.messages):
                    await asyncio.sleep(0.2)
                    # The breach and its exception event travel on two topics: whichever
                    # notifier applies first makes the one alert of this cause and order.
                    listed = (await http.get("/alerts", params={"since": now.isoformat()})).json()
                    mine = [a for a in listed if a["subject"] == str(order_id)]
                    alert = mine[0] if mine else {}

            # One alert for the cause and order, though three events spoke of it.
            # (The AlertRaised notifier announced comes back over the broker, too.)
            seen: list[str] = []
            async with asyncio.timeout(DEADLINE_S):
                while len(seen) < 3:
                    await asyncio.sleep(0.2)
                    events = (await http.get("/events", params={"key": str(order_id)})).json()
                    seen = sorted(e["event_type"] for e in events)
            assert seen == ["AlertRaised", "OrderExceptionRaised", "SlaBreached"]
            listed = (await http.get("/alerts", params={"since": now.isoformat()})).json()
            assert [a["id"] for a in listed if a["subject"] == str(order_id)] == [alert["id"]]
            assert alert["subject"] == str(order_id) and alert["severity"] == "critical"
            webhook = [d for d in alert["deliveries"] if d["target_type"] == "webhook"]
            assert [(d["state"], d["attempts"]) for d in webhook] == [("delivered", 2)]

            # The webhook: one failed attempt, then the same delivery again, signed.
            assert len(target.requests) == 2
            for headers, body in target.requests:
                assert verify(secret, body, headers["X-OMS-Signature"])
                assert headers["X-OMS-Delivery-Id"] == webhook[0]["id"]
                assert json.loads(body)["alert"]["id"] == alert["id"]
            [message] = box.messages
            assert message["To"] == "logistics@example.com"
            # Named after the event that made the alert (whichever came first).
            assert message["Subject"] == f"[OMS critical] {alert['alert_type']}: {order_id}"
            assert alert["alert_type"] in ("sla_breached", "order_exception")

            acked = await http.post(f"/alerts/{alert['id']}/ack", headers=operator)
            assert acked.status_code == 200, acked.text
            assert acked.json()["acknowledged_by"] == "e2e-ops"
            unnamed = await http.post(f"/alerts/{alert['id']}/ack")
            assert unnamed.status_code == 401
    finally:
        target.close()
