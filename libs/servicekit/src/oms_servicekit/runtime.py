"""The composition of a service's infrastructure: database, outbox relay, consumers.

A service's composition root builds one ``ServiceRuntime`` with its settings, its
migrations and its consumers; nothing connects before :meth:`ServiceRuntime.start`.
Start-up waits for the database and the broker with backoff instead of crashing;
:meth:`ServiceRuntime.stop` drains in order (consumers finish their batch and commit,
the relay flushes the outbox, the producer flushes) so a clean stop loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from oms_contracts import Envelope, all_topics
from oms_messaging import (
    INBOX_TABLE,
    BatchHandler,
    ConsumerRunner,
    Handler,
    Inbox,
    OutboxRelay,
    UnitOfWork,
)
from oms_messaging.kafka import KafkaSettings, create_consumer, create_producer, ensure_topics
from oms_servicekit.database import (
    create_engine,
    create_session_factory,
    ensure_database,
    run_migrations,
)
from oms_servicekit.jobs import run_exclusively
from oms_servicekit.metrics import count_consumer_restart, count_emitted
from oms_servicekit.settings import ServiceSettings
from oms_servicekit.young_tables import analyze_young_tables

log = logging.getLogger(__name__)

#: Back-off before a dead consumer loop is started again: doubles per death, up to the max.
_RESTART_FIRST_DELAY_S = 0.5
_RESTART_MAX_DELAY_S = 30.0
#: A loop that ran this long before dying counts as healthy: its back-off starts again.
_HEALTHY_RUN_S = 300.0


@dataclass
class ConsumerSpec:
    """One consumer group of the service: the topics it reads and a handler per event."""

    group_id: str
    topics: list[str]
    handlers: dict[str, Handler]
    #: Optional set-based handlers for runs of one event type (see ``BatchHandler``).
    batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)
    #: Where applied events are recorded (the ``inbox`` table unless the service's own
    #: tables keep one row per event id, see ``oms_messaging.inbox``).
    inbox: Inbox = INBOX_TABLE


@dataclass
class PeriodicJob:
    """Work the service does on a timer, in every replica unless ``exclusive``.

    An exclusive job (a purge, a nightly recompute, a pull connector) runs in one replica
    at a time: each round first takes a PostgreSQL advisory lock named after the job and
    skips the round when another replica holds it. The lock belongs to a connection, so a
    replica that dies mid-run releases it.
    """

    name: str
    interval_s: float
    run: Callable[[], Awaitable[None]]
    exclusive: bool = False


@dataclass
class _State:
    engine: AsyncEngine | None = None
    session_factory: async_sessionmaker[AsyncSession] | None = None
    producer: AIOKafkaProducer | None = None
    relay: OutboxRelay | None = None
    consumers: list[ConsumerRunner] = field(default_factory=list)
    supervisors: list[asyncio.Task[None]] = field(default_factory=list)
    jobs: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: bool = False


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        service_name: str,
        migrations_dir: Path,
        consumers: list[ConsumerSpec] | None = None,
        periodic_jobs: list[PeriodicJob] | None = None,
    ) -> None:
        self.settings = settings
        self.service_name = service_name
        self._migrations_dir = migrations_dir
        self._consumer_specs = consumers or []
        self._periodic_jobs = periodic_jobs or []
        self._state = _State()
        self.kafka = KafkaSettings(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=service_name,
            partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
            linger_ms=settings.kafka_consumer_linger_ms,
        )

    # -- what the rest of the service uses -------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        if self._state.engine is None:
            raise RuntimeError("runtime not started")
        return self._state.engine

    @property
    def consumers(self) -> list[ConsumerRunner]:
        return list(self._state.consumers)

    @property
    def relay(self) -> OutboxRelay | None:
        return self._state.relay

    def uow(self, causation: Envelope | None = None) -> UnitOfWork:
        """A new unit of work; events it emits are published after it commits."""
        if self._state.session_factory is None:
            raise RuntimeError("runtime not started")
        return UnitOfWork(
            self._state.session_factory,
            producer=self.service_name,
            causation=causation,
            on_commit=self._committed,
            max_event_bytes=self.settings.outbox_max_event_bytes,
        )

    def _committed(self, emitted: Sequence[Envelope]) -> None:
        """Events are in the outbox: count them and wake the relay to publish them now."""
        count_emitted(self.service_name, emitted)
        relay = self._state.relay
        if relay is not None:
            relay.wake()

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        settings = self.settings
        await self._with_backoff("database", lambda: ensure_database(settings))
        engine = create_engine(settings)
        self._state.engine = engine
        self._state.session_factory = create_session_factory(engine)
        await self._with_backoff("migrations", lambda: run_migrations(engine, self._migrations_dir))

        await self._with_backoff("broker", self._start_producer)
        producer = self._state.producer
        assert producer is not None
        await self._with_backoff("topics", lambda: ensure_topics(self.kafka, all_topics()))

        relay = OutboxRelay(
            engine,
            producer,
            shards=settings.outbox_shards,
            max_event_bytes=settings.outbox_max_event_bytes,
        )
        relay.start()
        self._state.relay = relay

        for index, spec in enumerate(self._consumer_specs):
            runner = self._new_runner(spec)
            await self._with_backoff(f"consumer {spec.group_id}", runner.start)
            self._state.consumers.append(runner)
            self._state.supervisors.append(
                asyncio.create_task(self._supervise(index, spec), name=f"supervise-{index}")
            )

        for job in [*self._periodic_jobs, *self._own_jobs(engine)]:
            self._state.jobs.append(asyncio.create_task(self._run_periodic(job), name=job.name))
        log.info("service started", extra={"port": settings.port, "database": settings.db_name})

    async def stop(self) -> None:
        self._state.stopping = True
        for task in [*self._state.supervisors, *self._state.jobs]:
            task.cancel()
        for task in [*self._state.supervisors, *self._state.jobs]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for runner in self._state.consumers:
            with contextlib.suppress(Exception):
                await runner.stop()
        if self._state.relay is not None:
            await self._state.relay.stop()
        if self._state.producer is not None:
            with contextlib.suppress(Exception):
                await self._state.producer.stop()
        if self._state.engine is not None:
            await self._state.engine.dispose()
        log.info("service stopped")

    def _own_jobs(self, engine: AsyncEngine) -> list[PeriodicJob]:
        """The jobs every service runs."""
        if self.settings.young_tables_check_s <= 0:
            return []

        async def first_statistics() -> None:
            await analyze_young_tables(engine)

        return [
            PeriodicJob(
                "first-statistics",
                self.settings.young_tables_check_s,
                first_statistics,
                exclusive=True,
            )
        ]

    async def _start_producer(self) -> None:
        # A fresh client per attempt: one whose start failed is not reusable.
        producer = create_producer(self.kafka)
        try:
            await producer.start()
        except Exception:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._state.producer = producer

    def _new_runner(self, spec: ConsumerSpec) -> ConsumerRunner:
        """A runner with a fresh Kafka consumer (a stopped aiokafka consumer cannot be
        started again)."""
        producer = self._state.producer
        assert producer is not None
        return ConsumerRunner(
            name=spec.group_id,
            consumer=create_consumer(self.kafka, spec.group_id),
            topics=spec.topics,
            handlers=spec.handlers,
            batch_handlers=spec.batch_handlers,
            inbox=spec.inbox,
            uow_factory=self.uow,
            dlq_producer=producer,
            linger_ms=self.kafka.linger_ms,
            linger_below=self.kafka.linger_below,
        )

    async def _supervise(self, index: int, spec: ConsumerSpec) -> None:
        """Keep consumer ``index`` running: a loop that dies (an error its own retries did
        not absorb) is logged with its cause and replaced by a new one after a back-off
        that doubles with each death (and starts again once a loop has run for a while).
        Meanwhile the service reports itself unready (``check_ready``), so an orchestrator
        stops sending it work and sees that something is wrong. :meth:`stop` cancels the
        supervisors first, so a stop never leads to a restart."""
        loop = asyncio.get_running_loop()
        deaths = 0
        while not self._state.stopping:
            runner = self._state.consumers[index]
            running_since = loop.time()
            try:
                await runner.wait()
                return  # stopped on purpose
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._state.stopping:
                    return
                if loop.time() - running_since > _HEALTHY_RUN_S:
                    deaths = 0
                deaths += 1
                count_consumer_restart(self.service_name, spec.group_id)
                delay = min(_RESTART_MAX_DELAY_S, _RESTART_FIRST_DELAY_S * 2 ** (deaths - 1))
                log.error(
                    "consumer %s died (%s: %s); restarting it in %.1fs",
                    spec.group_id,
                    type(exc).__name__,
                    exc,
                    delay,
                    exc_info=exc,
                )
            with contextlib.suppress(Exception):
                await runner.stop()
            await self._restart_consumer(index, spec, delay)

    async def _restart_consumer(self, index: int, spec: ConsumerSpec, delay: float) -> None:
        """Start a new runner for consumer ``index`` after ``delay``, trying again (a fresh
        Kafka consumer each time, backing off) for as long as it takes: giving up would
        leave the service unready for good with nothing left to bring it back.

        Each new runner takes its place in the runtime before it starts, so a stop that
        comes meanwhile stops it instead of leaving a member in the group."""
        while True:
            await asyncio.sleep(delay)
            replacement = self._new_runner(spec)
            self._state.consumers[index] = replacement
            try:
                await replacement.start()
            except Exception as exc:
                delay = min(_RESTART_MAX_DELAY_S, delay * 2)
                log.warning(
                    "consumer %s could not start again (%s: %s); retrying in %.1fs",
                    spec.group_id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                with contextlib.suppress(Exception):
                    await replacement.stop()
                continue
            log.info("consumer %s restarted", spec.group_id)
            return

    async def check_ready(self) -> dict[str, bool]:
        checks = {"database": False, "broker": False}
        # Every consumer loop is running (one that died makes the service unready until
        # its supervisor has restarted it).
        checks["consumers"] = all(runner.running for runner in self._state.consumers)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                checks["database"] = True
        with contextlib.suppress(Exception):
            producer = self._state.producer
            if producer is not None:
                async with asyncio.timeout(2):
                    await producer.client.fetch_all_metadata()
                checks["broker"] = True
        return checks

    async def _with_backoff(self, what: str, action: Callable[[], Awaitable[object]]) -> None:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=0.2, max=3),
            stop=stop_after_delay(self.settings.startup_timeout_s),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.warning(
                        "waiting for %s (attempt %d)", what, attempt.retry_state.attempt_number
                    )
                await action()

    async def _run_periodic(self, job: PeriodicJob) -> None:
        while True:
            await asyncio.sleep(job.interval_s)
            try:
                if job.exclusive:
                    await self._run_exclusive(job)
                else:
                    await job.run()
            except Exception:
                log.exception("periodic job %s failed", job.name)

    async def _run_exclusive(self, job: PeriodicJob) -> bool:
        """Run ``job`` if no other replica is running it; False when it was skipped."""
        return await run_exclusively(self.engine, job.name, job.run)
