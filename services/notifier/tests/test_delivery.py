"""The delivery worker against real local targets: HTTP servers on free ports and an
aiosmtpd SMTP server, with the deliveries in real PostgreSQL.

Retry delays are made tiny through the retry policy; tests poll for outcomes with a
deadline and never assert how long anything took.
"""

from __future__ import annotations

import asyncio
import email
import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.adapters.senders import SmtpSender, WebhookSender
from notifier.adapters.subscriptions import SubscriptionRepository
from notifier.adapters.tables import alert_windows, deliveries
from notifier.alerting import AlertingConfig
from notifier.delivery_worker import DeliveryWorker
from notifier.domain.delivery import RetryPolicy, verify
from notifier.domain.subscriptions import TargetPolicy
from notifier.handlers import SERVICE
from oms_contracts.events import SlaAtRisk, SlaBreached
from oms_messaging import UnitOfWork
from oms_servicekit.outbound import parse_networks

DEADLINE_S = 20.0
FAST = RetryPolicy(base_s=0.01, cap_s=0.05, max_age_s=3600)


# -- real local targets ---------------------------------------------------------------


class HookTarget:
    """An HTTP server in a thread that records each POST and answers from a script:
    the statuses in ``script`` first, then 200. With ``hang`` set, it holds every
    request open until :meth:`release` (a dead target that accepts and never answers)."""

    def __init__(self, script: list[int] | None = None, *, hang: bool = False) -> None:
        self.script = list(script or [])
        self.hang = hang
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        self._released = threading.Event()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                target.requests.append((dict(self.headers.items()), body))
                target.arrived.set()
                if target.hang:
                    target._released.wait(60)
                status = target.script.pop(0) if target.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def hooks() -> Iterator[Callable[..., HookTarget]]:
    made: list[HookTarget] = []

    def make(script: list[int] | None = None, *, hang: bool = False) -> HookTarget:
        made.append(HookTarget(script, hang=hang))
        return made[-1]

    yield make
    for target in made:
        target.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, Mailbox]]:
    mailbox = Mailbox()
    # aiosmtpd's Controller checks its port by connecting to it, so it needs a real one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", mailbox
    finally:
        controller.stop()


# -- the service side -----------------------------------------------------------------


def make_worker(
    db: async_sessionmaker[AsyncSession],
    *,
    smtp_url: str = "",
    retry: RetryPolicy = FAST,
    attempt_timeout_s: float = 5.0,
    policy: TargetPolicy | None = None,
) -> DeliveryWorker:
    return DeliveryWorker(
        lambda: UnitOfWork(db, producer=SERVICE),
        webhook=WebhookSender(policy or TargetPolicy(), attempt_timeout_s=attempt_timeout_s),
        smtp=SmtpSender(smtp_url, sender="oms@test.local", timeout_s=attempt_timeout_s),
        retry=retry,
        interval_s=0.02,
        concurrency=10,
        lease_s=attempt_timeout_s + 30,
    )


@pytest.fixture
async def workers(db) -> AsyncIterator[Callable[..., DeliveryWorker]]:
    made: list[DeliveryWorker] = []

    def make(**kwargs: Any) -> DeliveryWorker:
        made.append(make_worker(db, **kwargs))
        return made[-1]

    yield make
    for worker in made:
        await worker.close()


async def subscribe(
    db: async_sessionmaker[AsyncSession], target_type: str, target: str, event_types: list[str]
) -> tuple[uuid.UUID, str]:
    sub_id, secret = uuid.uuid4(), f"secret-{uuid.uuid4().hex}"
    async with UnitOfWork(db, producer="test") as uow:
        await SubscriptionRepository(uow.session).create(
            {
                "id": sub_id,
                "name": None,
                "event_types": event_types,
                "channel": None,
                "warehouse": None,
                "target_type": target_type,
                "target": target,
                "secret": secret if target_type == "webhook" else None,
            },
            operator="tester",
        )
        await uow.commit()
    return sub_id, secret


def at_risk() -> SlaAtRisk:
    now = datetime.now(UTC)
    return SlaAtRisk(
        order_id=uuid.uuid4(),
        channel="web",
        order_class="standard",
        stage="pick",
        deadline=now + timedelta(hours=1),
        raised_at=now,
    )


@pytest.fixture
def raise_alert(deliver) -> Callable[..., Awaitable[Any]]:
    async def raise_alert(event: Any, *, clock: Callable[[], datetime] | None = None) -> Any:
        at = clock() if clock else None
        return await deliver(event, at=at, alerting=AlertingConfig(digest_threshold=2, retry=FAST))

    return raise_alert


async def delivery_rows(db: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with db() as session:
        return [dict(r._mapping) for r in await session.execute(select(deliveries))]


async def until(
    check: Callable[[], Awaitable[bool]], step: Callable[[], Awaitable[Any]] | None = None
) -> None:
    """Run ``step`` (if any) until ``check`` holds; fail after the deadline."""
    async with asyncio.timeout(DEADLINE_S):
        while True:
            if step is not None:
                await step()
            if await check():
                return
            await asyncio.sleep(0.02)


# -- the tests ------------------------------------------------------------------------


async def test_webhooks_are_signed_with_the_subscription_secret(
    db, hooks, workers, raise_alert
) -> None:
    target = hooks()
    _, secret = await subscribe(db, "webhook", target.url, ["SlaAtRisk"])
    event = at_risk()
    await raise_alert(event)

    assert await workers().run_once() == 1

    [(headers, body)] = target.requests
    assert verify(secret, body, headers["X-OMS-Signature"])
    assert not verify("another-secret", body, headers["X-OMS-Signature"])
    assert headers["X-OMS-Signature"].startswith("sha256=")
    [delivery] = await delivery_rows(db)
    payload = json.loads(body)
    assert payload["delivery_id"] == headers["X-OMS-Delivery-Id"] == str(delivery["id"])
    assert int(headers["X-OMS-Timestamp"]) > 0
    assert payload["kind"] == "alert"
    assert payload["alert"]["event_type"] == "SlaAtRisk"
    assert payload["alert"]["details"]["order_id"] == str(event.order_id)
    assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == (
        "delivered",
        1,
        200,
    )


async def test_a_target_that_fails_twice_then_succeeds_gets_it_on_the_third_attempt(
    db, hooks, workers, raise_alert
) -> None:
    target = hooks([500, 503])
    _, secret = await subscribe(db, "webhook", target.url, ["SlaAtRisk"])
    await raise_alert(at_risk())
    worker = workers()

    async def delivered() -> bool:
        [row] = await delivery_rows(db)
        return bool(row["state"] == "delivered")

    await until(delivered, step=worker.run_once)

    [row] = await delivery_rows(db)
    assert row["attempts"] == 3 and row["last_status"] == 200 and row["last_error"] is None
    assert len(target.requests) == 3
    # Every attempt is the same delivery, each signed over its own body.
    assert {h["X-OMS-Delivery-Id"] for h, _ in target.requests} == {str(row["id"])}
    assert all(verify(secret, body, h["X-OMS-Signature"]) for h, body in target.requests)


async def test_after_the_give_up_time_a_failing_delivery_is_failed(
    db, hooks, workers, raise_alert, deliver
) -> None:
    target = hooks([500] * 10)
    await subscribe(db, "webhook", target.url, ["SlaAtRisk"])
    no_patience = RetryPolicy(base_s=0.01, cap_s=0.01, max_age_s=0)
    await deliver(at_risk(), alerting=AlertingConfig(retry=no_patience))

    await workers(retry=no_patience).run_once()

    [row] = await delivery_rows(db)
    assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 1, 500)
    assert row["last_error"] == "HTTP 500"


async def test_a_dead_target_does_not_delay_the_others(db, hooks, workers, raise_alert) -> None:
    dead = hooks(hang=True)  # accepts the request and never answers
    live = hooks()
    dead_sub, _ = await subscribe(db, "webhook", dead.url, ["SlaBreached"])
    live_sub, _ = await subscribe(db, "webhook", live.url, ["SlaBreached"])
    now = datetime.now(UTC)
    await raise_alert(
        SlaBreached(
            order_id=uuid.uuid4(),
            channel="web",
            order_class="standard",
            stage="ship",
            deadline=now,
            raised_at=now,
        )
    )
    worker = workers(attempt_timeout_s=60.0)
    running = asyncio.create_task(worker.run())
    try:

        async def live_delivered() -> bool:
            rows = {r["subscription_id"]: r for r in await delivery_rows(db)}
            return bool(rows[live_sub]["state"] == "delivered")

        await until(live_delivered)
        # The live target got its alert while the dead one still holds its request.
        assert dead.arrived.is_set()
        rows = {r["subscription_id"]: r for r in await delivery_rows(db)}
        assert rows[dead_sub]["state"] == "in_flight"
        assert len(live.requests) == 1
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_an_unreachable_target_is_retried_later(db, workers, raise_alert) -> None:
    await subscribe(db, "webhook", "http://127.0.0.1:9/closed", ["SlaAtRisk"])
    slow = RetryPolicy(base_s=3600, cap_s=3600, max_age_s=86400)
    await raise_alert(at_risk())

    await workers(retry=slow).run_once()

    [row] = await delivery_rows(db)
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert "Connect" in (row["last_error"] or "")
    assert row["next_attempt_at"] > datetime.now(UTC) + timedelta(minutes=20)


async def test_a_webhook_to_a_forbidden_address_fails_at_once(db, workers, raise_alert) -> None:
    # Stored while loopback was allowed; the sender's policy no longer allows it.
    await subscribe(db, "webhook", "http://127.0.0.1:9/hook", ["SlaAtRisk"])
    await raise_alert(at_risk())

    await workers(policy=TargetPolicy(allowed=parse_networks([]))).run_once()

    [row] = await delivery_rows(db)
    assert row["state"] == "failed" and "forbidden address" in (row["last_error"] or "")


async def test_email_goes_over_smtp(db, workers, raise_alert, smtp_server) -> None:
    smtp_url, mailbox = smtp_server
    await subscribe(db, "email", "warehouse@example.com", ["SlaAtRisk"])
    event = at_risk()
    await raise_alert(event)

    await workers(smtp_url=smtp_url).run_once()

    [(recipients, message)] = mailbox.messages
    assert recipients == ["warehouse@example.com"]
    assert message["To"] == "warehouse@example.com"
    assert message["From"] == "oms@test.local"
    assert message["Subject"] == f"[OMS warning] sla_at_risk: {event.order_id}"
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert f"order {event.order_id} at risk of missing its pick SLA" in text
    [row] = await delivery_rows(db)
    assert message["X-OMS-Delivery-Id"] == str(row["id"])
    assert row["state"] == "delivered"


async def test_email_without_smtp_configured_waits(db, workers, raise_alert) -> None:
    await subscribe(db, "email", "ops@example.com", ["SlaAtRisk"])
    await raise_alert(at_risk())
    await workers(retry=RetryPolicy(base_s=3600, cap_s=3600)).run_once()
    [row] = await delivery_rows(db)
    assert (row["state"], row["last_error"]) == ("pending", "SMTP_URL is not set")


async def test_a_flood_goes_out_as_single_alerts_then_one_digest(
    db, hooks, workers, raise_alert, smtp_server
) -> None:
    target = hooks()
    smtp_url, mailbox = smtp_server
    _, secret = await subscribe(db, "webhook", target.url, ["SlaAtRisk"])
    await subscribe(db, "email", "ops@example.com", ["SlaAtRisk"])
    minute = datetime(2026, 11, 11, 9, 30, 10, tzinfo=UTC)  # long past: the digest is due
    events = [at_risk() for _ in range(5)]
    for event in events:
        await raise_alert(event, clock=lambda: minute)

    await workers(smtp_url=smtp_url).run_once()

    bodies = target.bodies()
    assert sorted(b["kind"] for b in bodies) == ["alert", "alert", "digest"]
    [digest] = [b["digest"] for b in bodies if b["kind"] == "digest"]
    assert digest["count"] == 3 and digest["alert_type"] == "sla_at_risk"
    assert digest["window_start"] == "2026-11-11T09:30:00+00:00"
    singles = {b["alert"]["subject"] for b in bodies if b["kind"] == "alert"}
    digested = {a["subject"] for a in digest["alerts"]}
    assert singles | digested == {str(e.order_id) for e in events}
    assert not singles & digested
    assert all(verify(secret, body, h["X-OMS-Signature"]) for h, body in target.requests)
    subjects = sorted(m["Subject"] for _, m in mailbox.messages)
    assert len(subjects) == 3
    assert subjects[0].startswith("[OMS digest] 3 x sla_at_risk")
    assert {r["state"] for r in await delivery_rows(db)} == {"delivered"}


async def test_an_attempt_that_raises_counts_as_a_failed_attempt(
    db, hooks, workers, raise_alert
) -> None:
    target = hooks()
    await subscribe(db, "webhook", target.url, ["SlaAtRisk"])
    await raise_alert(at_risk())
    worker = workers(retry=RetryPolicy(base_s=3600, cap_s=3600))

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    worker.webhook.send = broken  # type: ignore[method-assign]
    await worker.run_once()

    [row] = await delivery_rows(db)
    assert (row["state"], row["attempts"], row["last_error"]) == (
        "pending",
        1,
        "RuntimeError: boom",
    )
    assert target.requests == []


async def test_old_digest_counters_are_purged(db, workers, raise_alert) -> None:
    await subscribe(db, "webhook", "http://127.0.0.1:9/hook", ["SlaAtRisk"])
    old = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    await raise_alert(at_risk(), clock=lambda: old)
    await raise_alert(at_risk())
    assert await workers().purge(datetime.now(UTC)) == 1
    async with db() as session:
        [window] = (await session.execute(select(alert_windows))).all()
    assert window.window_start > old
