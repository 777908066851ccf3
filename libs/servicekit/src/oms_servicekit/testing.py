"""Test support shared by every service's integration tests.

A throwaway, migrated database on the real PostgreSQL, and the ways a test drives it:
units of work, events delivered through a real broker to the service's production
consumers (``EventDriver``: the same ``ConsumerRunner``, handler map, inbox and retries
as in production), reading the outbox, and a runtime stand-in for the HTTP routes. A
handler, a repository or a route is thereby tested against the real schema (constraints,
locks, the inbox). Then what every service's audit tests check the same way: bearer
tokens an app in jwt mode trusts, a snapshot proving a refused call changed nothing, the
trail's rows, its append-only guard and ``GET /audit``'s paging. Nothing here imports
pytest (a failed check raises AssertionError): each service's ``conftest.py`` binds
these helpers to its own migrations and service name in a few fixtures.

The PostgreSQL server is ``OMS_TEST_DATABASE_URL`` if set, else the ``DATABASE_URL`` a
service would read (default 127.0.0.1:5432), so tests can be pointed at a server other
than the one ``make run`` uses without touching the services' settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import asyncpg
import jwt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.structs import RecordMetadata
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from oms_contracts import Envelope, Event, make_envelope
from oms_contracts.topics import dead_letter_topic, topic_for
from oms_messaging import ConsumerRunner, UnitOfWork
from oms_messaging.kafka import KafkaSettings, create_producer, ensure_topics
from oms_messaging.tables import outbox
from oms_servicekit.audit import AUDIT_RETENTION_FLOOR_DAYS, AUDIT_TABLE, audit_trail
from oms_servicekit.auth import Authenticator, AuthSettings
from oms_servicekit.database import (
    create_engine,
    create_session_factory,
    ensure_database,
    run_migrations,
)
from oms_servicekit.runtime import ConsumerSpec
from oms_servicekit.settings import ServiceSettings

#: Overrides the server the test databases are created on (a libpq/SQLAlchemy URL
#: without a database name, e.g. ``postgresql://postgres@127.0.0.1:5432``).
TEST_DATABASE_URL_ENV = "OMS_TEST_DATABASE_URL"

#: How long :func:`wait_for_lock_waiter` waits for a concurrent transaction to block.
LOCK_WAIT_TIMEOUT_S = 10.0

#: Alembic's bookkeeping: emptying it would make the next migration run start over.
_KEEP_TABLES = frozenset({"alembic_version"})

#: The SQLSTATE the audit trail's guard refuses a rewrite with (insufficient_privilege).
REFUSED_SQLSTATE = "42501"


def database_settings(db_name: str, *, pool_size: int = 10) -> ServiceSettings:
    """Settings for the test database ``db_name`` on the test server."""
    overrides: dict[str, Any] = {"db_name": db_name, "db_pool_size": pool_size}
    server = os.environ.get(TEST_DATABASE_URL_ENV)
    if server:
        overrides["database_url"] = server
    return ServiceSettings(**overrides)


@dataclass
class MigratedDatabase:
    """A migrated test database: its settings, engine and session factory.

    ``producer`` names the service whose units of work these are, so events emitted
    through :meth:`uow` carry the producer the service itself would write. ``drivers``,
    when a test module attaches them, are the service's production consumers on a real
    broker writing to this database: :meth:`deliver` hands them an event.
    """

    settings: ServiceSettings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    producer: str = "test"
    drivers: EventDrivers | None = None

    def uow(self, causation: Envelope | None = None) -> UnitOfWork:
        """A unit of work on this database, as ``ServiceRuntime.uow`` makes one."""
        return UnitOfWork(self.session_factory, producer=self.producer, causation=causation)

    async def truncate(self) -> None:
        """Empty every table; see :func:`truncate_all`."""
        await truncate_all(self.engine)

    async def deliver(
        self, event: Event, *, envelope: Envelope | None = None, **config: Any
    ) -> list[Envelope]:
        """Publish ``event`` to the service's consumers (built with ``config``) and wait
        until it is applied; the events they emitted. See :class:`EventDrivers`."""
        if self.drivers is None:
            raise RuntimeError("no consumers attached to this database (drivers is None)")
        return await self.drivers.deliver(event, envelope=envelope, **config)

    async def deliver_many(
        self, events: Sequence[Event], *, replicas: int = 1, **config: Any
    ) -> list[Envelope]:
        """Publish ``events`` as one burst; see :meth:`EventDrivers.deliver_many`."""
        if self.drivers is None:
            raise RuntimeError("no consumers attached to this database (drivers is None)")
        return await self.drivers.deliver_many(events, replicas=replicas, **config)

    async def outbox_rows(self) -> list[dict[str, Any]]:
        """Every outbox row; see :func:`outbox_rows`."""
        return await outbox_rows(self)

    async def wait_for_lock_waiter(self) -> None:
        """Until a session waits for a lock; see :func:`wait_for_lock_waiter`."""
        await wait_for_lock_waiter(self.engine)


SessionSource = async_sessionmaker[AsyncSession] | MigratedDatabase
"""Where a helper gets its sessions: a session factory, or a :class:`MigratedDatabase`."""


def _session_factory(source: SessionSource) -> async_sessionmaker[AsyncSession]:
    return source.session_factory if isinstance(source, MigratedDatabase) else source


#: Connections a test database keeps open between uses. A session holds a dozen test
#: databases at once, and parallel workers (pytest-xdist) one set each, beside a running
#: stack; kept pools of ten each ran the server out of connections.
_IDLE_CONNECTIONS = 2


@asynccontextmanager
async def migrated_database(
    migrations_dir: Path,
    prefix: str = "oms_test",
    *,
    producer: str = "test",
    pool_size: int = 10,
) -> AsyncIterator[MigratedDatabase]:
    """Create a uniquely named database, migrate it to head, yield it, drop it.

    A fresh database per test session (not a shared one) so concurrent test runs and
    a running stack never see each other's rows, and so the migrations themselves are
    exercised. ``pool_size`` bounds how many units of work can hold a connection at
    once (the engine allows as many again in overflow); concurrency tests need enough.
    """
    async with _new_database(prefix, pool_size) as (settings, engine):
        await run_migrations(engine, migrations_dir)
        yield MigratedDatabase(settings, engine, create_session_factory(engine), producer)


@asynccontextmanager
async def empty_database(prefix: str = "oms_test") -> AsyncIterator[AsyncEngine]:
    """An engine on a new, empty database, dropped afterwards; the test migrates it.

    For tests of the migrations themselves: rows written at an old revision, then
    :func:`migrate` up (or down), show what the migration does to existing data.
    """
    async with _new_database(prefix, 10) as (_, engine):
        yield engine


@asynccontextmanager
async def _new_database(
    prefix: str, pool_size: int
) -> AsyncIterator[tuple[ServiceSettings, AsyncEngine]]:
    settings = database_settings(f"{prefix}_{uuid.uuid4().hex[:10]}", pool_size=pool_size)
    await ensure_database(settings)
    engine = create_engine(settings, idle=_IDLE_CONNECTIONS)
    try:
        yield settings, engine
    finally:
        await engine.dispose()
        conn = await asyncpg.connect(settings.server_dsn("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{settings.db_name}" WITH (FORCE)')
        finally:
            await conn.close()


async def migrate(
    engine: AsyncEngine, migrations_dir: Path, revision: str, *, down: bool = False
) -> None:
    """Upgrade (or with ``down``, downgrade) the database of ``engine`` to ``revision``."""

    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(migrations_dir))
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table of the database except ``alembic_version``.

    Truncating is much cheaper than a new database per test, and lets a test start from
    nothing whatever the one before it left; the schema (and its version) stays.
    """
    async with engine.begin() as conn:
        tables = [
            name
            for name in (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
            if name not in _KEEP_TABLES
        ]
        if tables:
            quoted = ", ".join(f'"{name}"' for name in tables)
            # The audit trail refuses TRUNCATE by trigger; tests (as the superuser) start
            # from nothing anyway, with triggers off for this transaction only.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


async def outbox_rows(source: SessionSource) -> list[dict[str, Any]]:
    """Every outbox row, oldest first, with ``envelope`` holding the parsed payload.

    The outbox is what the service would publish: asserting on it (rather than on the
    handler's return value) checks the topic and key the relay will use, too.
    """
    async with _session_factory(source)() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
    return [
        {**dict(row._mapping), "envelope": Envelope.model_validate_json(row.payload)}
        for row in rows
    ]


async def wait_for_lock_waiter(engine: AsyncEngine) -> None:
    """Return once some session of ``engine``'s database is waiting for a lock.

    Makes a race deterministic: a test holding a transaction open commits only when
    the concurrent transaction it races is known to be blocked on it, instead of
    hoping a sleep was long enough. Gives up with TimeoutError after
    ``LOCK_WAIT_TIMEOUT_S`` (a race that never happens is a failure, not a hang);
    wrap the call in ``asyncio.timeout`` for a shorter bound.
    """
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(LOCK_WAIT_TIMEOUT_S):
        while True:
            async with engine.connect() as conn:
                if await conn.scalar(query):
                    return
            await asyncio.sleep(0.02)


class DatabaseOnlyRuntime:
    """A stand-in for ``ServiceRuntime`` with a database and no broker, for HTTP tests.

    Routes only use the runtime for units of work, so an app built with this one
    serves real requests on the test database; events stay in the outbox, where a test
    can read them. Starting and stopping do nothing: the database belongs to the test.
    """

    def __init__(self, source: SessionSource, *, producer: str) -> None:
        self._session_factory = _session_factory(source)
        self.service_name = producer
        #: What the app reads of the runtime's settings; ``/metrics`` reads the database
        #: on every scrape, as a test expects.
        self.settings = ServiceSettings(metrics_db_max_age_s=0.0)

    def uow(self, causation: Envelope | None = None) -> UnitOfWork:
        return UnitOfWork(self._session_factory, producer=self.service_name, causation=causation)

    async def start(self) -> None:
        """Nothing to start: the test created and migrated the database."""

    async def stop(self) -> None:
        """Nothing to stop: the test drops the database."""

    async def check_ready(self) -> dict[str, bool]:
        """Ready when the database answers; there is no broker to ask."""
        try:
            async with self._session_factory() as session:
                await session.execute(text("SELECT 1"))
        except Exception:
            return {"database": False}
        return {"database": True}


@asynccontextmanager
async def refused_inserts(
    engine: AsyncEngine, table: str, column: str, value: str
) -> AsyncIterator[None]:
    """While the block runs, the database refuses (raises on) any insert into ``table``
    whose ``column`` is ``value``: one bad row in a batch, for tests of how a batch
    isolates it. ``table`` and ``column`` are the test's own constants."""
    literal = value.replace("'", "''")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF NEW.{column} = '{literal}' THEN "
                "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER refuse_poison BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            )
        )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER refuse_poison ON {table}"))
            await conn.execute(text("DROP FUNCTION refuse_poison()"))


@contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement ``engine`` sends while the block runs, in order, whitespace
    collapsed: what a test counts to prove a path is set-based (as the database sees it)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)


# -- events through the production consumer ------------------------------------------------


class EventDriver:
    """A service's production consumers on a real broker, fed by the test.

    For every :class:`~oms_servicekit.runtime.ConsumerSpec` the service's composition root
    declares (its handler map, its batch handlers), a production :class:`ConsumerRunner`
    on the test database, as ``ServiceRuntime`` builds one: same inbox name, same unit of
    work, same retries and dead-letter topic. :meth:`deliver` publishes an event's
    envelope to its real topic (keyed as the outbox relay keys it) and returns once every
    runner reading that topic has settled it (applied, duplicate, skipped or
    dead-lettered), with the events the service emitted meanwhile (its new outbox rows).
    A redelivery is the same envelope published again.

    Each driver joins with Kafka consumer groups of its own whose offsets it commits at
    the end of the topics before they join, so drivers on one broker never see each
    other's events (the runner's name, which the inbox records, stays the service's group
    id). The end is found by writing an empty marker to every partition: the broker's
    own answer for "latest" can lag behind a batch that was just written. With ``replicas`` > 1 each
    group has that many members, as that many service instances would: the partitions
    are split between them and their transactions run concurrently.
    """

    def __init__(
        self,
        bootstrap: str,
        source: SessionSource,
        specs: Sequence[ConsumerSpec],
        *,
        producer: str,
        replicas: int = 1,
        settle_timeout: float = 30.0,
    ) -> None:
        self._kafka = KafkaSettings(bootstrap_servers=bootstrap, client_id=f"{producer}-test")
        self._session_factory = _session_factory(source)
        self._specs = list(specs)
        self._service = producer
        self._settle_timeout = settle_timeout
        self._replicas = replicas
        self._producer: AIOKafkaProducer | None = None
        self.runners: list[ConsumerRunner] = []
        self._groups: list[tuple[ConsumerSpec, list[ConsumerRunner]]] = []
        self._lock = asyncio.Lock()

    def _uow(self, causation: Envelope | None) -> UnitOfWork:
        return UnitOfWork(self._session_factory, producer=self._service, causation=causation)

    async def start(self) -> None:
        topics = sorted({topic for spec in self._specs for topic in spec.topics})
        await ensure_topics(self._kafka, topics)
        self._producer = create_producer(self._kafka)
        await self._producer.start()
        ends = await self._mark_ends(topics)
        members: list[tuple[ConsumerSpec, list[AIOKafkaConsumer]]] = []
        for spec in self._specs:
            group_id = f"{spec.group_id}-{uuid.uuid4().hex[:12]}"
            await self._commit(
                group_id, {tp: o for tp, o in ends.items() if tp.topic in spec.topics}
            )
            consumers = [self._new_member(spec, group_id) for _ in range(self._replicas)]
            runners = self.runners[-self._replicas :]
            await asyncio.gather(*(runner.start() for runner in runners))
            self._groups.append((spec, runners))
            members.append((spec, consumers))
        for spec, consumers in members:
            await self._positioned(consumers, spec.topics, ends)

    async def _mark_ends(self, topics: list[str]) -> dict[TopicPartition, int]:
        """The end of every partition of ``topics``: just past a marker written there."""
        assert self._producer is not None
        sends = [
            await self._producer.send(topic, value=b"", partition=partition)
            for topic in topics
            for partition in sorted(await self._producer.partitions_for(topic))
        ]
        return {
            TopicPartition(m.topic, m.partition): m.offset + 1 for m in await asyncio.gather(*sends)
        }

    async def _commit(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets`` for ``group_id`` before any member joins it."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.assign(list(offsets))
            await consumer.commit(offsets)
        finally:
            await consumer.stop()

    def _new_member(self, spec: ConsumerSpec, group_id: str) -> AIOKafkaConsumer:
        assert self._producer is not None
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            client_id=self._kafka.client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=self._kafka.fetch_max_wait_ms,
            # Joining a group takes half the session timeout: a short one keeps
            # starting a driver (once per module and configuration) near a second.
            session_timeout_ms=2000,
            heartbeat_interval_ms=500,
        )
        runner = ConsumerRunner(
            name=spec.group_id,
            consumer=consumer,
            topics=spec.topics,
            handlers=spec.handlers,
            batch_handlers=spec.batch_handlers,
            inbox=spec.inbox,
            uow_factory=self._uow,
            dlq_producer=self._producer,
        )
        self.runners.append(runner)
        return consumer

    async def _positioned(
        self,
        consumers: list[AIOKafkaConsumer],
        topics: list[str],
        ends: dict[TopicPartition, int],
    ) -> None:
        """Until ``consumers`` (one group) own every partition of ``topics`` between them,
        each once, and know where they start (the end as of now): an event published
        afterwards is one they will read."""
        async with asyncio.timeout(self._settle_timeout):
            while True:
                owned = [(tp.topic, tp.partition) for c in consumers for tp in c.assignment()]
                wanted = {
                    (topic, partition)
                    for topic in topics
                    for partition in consumers[0].partitions_for_topic(topic) or ()
                }
                settled = len(owned) == len(set(owned)) and all(
                    c.assignment() for c in consumers[: len(wanted)]
                )
                if wanted and wanted <= set(owned) and settled:
                    break
                await asyncio.sleep(0.05)
            for consumer in consumers:
                for tp in consumer.assignment():
                    position = await consumer.position(tp)
                    if position != ends[tp]:
                        raise AssertionError(f"{tp} starts at {position}, not {ends[tp]}")

    async def stop(self) -> None:
        for runner in self.runners:
            with contextlib.suppress(Exception):
                await runner.stop()
        if self._producer is not None:
            await self._producer.stop()

    def _settled(self, records: Sequence[tuple[str, int, int]]) -> bool:
        """Whether every group reading the topic of each record (topic, partition, offset)
        has gone past it: applied, found in the inbox, skipped or dead-lettered. By the
        group's positions, not its counters: a partition moving between members mid-burst
        is read twice (the inbox absorbs it) but passed once."""
        for runner in self.runners:
            if not runner.running:
                raise AssertionError(f"consumer {runner.name} died")
        for spec, runners in self._groups:
            for topic, partition, offset in records:
                if topic in spec.topics and not any(
                    r.stats.positions.get((topic, partition), -1) > offset for r in runners
                ):
                    return False
        return True

    async def deliver(self, event: Event, *, envelope: Envelope | None = None) -> list[Envelope]:
        """Publish ``event`` (as ``envelope``, default a new one from producer ``"test"``)
        and wait until it is settled; the events the service emitted meanwhile."""
        return await self.deliver_many([envelope or make_envelope(event, producer="test")])

    async def deliver_many(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Publish ``envelopes`` in order (one batch, as a burst reaches the consumer) and
        wait until every one is settled; the events the service emitted meanwhile."""
        assert self._producer is not None, "driver not started"
        async with self._lock:
            async with self._session_factory() as session:
                last = await session.scalar(select(func.coalesce(func.max(outbox.c.id), 0)))
            sends = [
                await self._producer.send(
                    topic_for(envelope.event_type).value,
                    value=envelope.model_dump_json().encode(),
                    key=envelope.key.encode(),
                )
                for envelope in envelopes
            ]
            await self._until_settled(await asyncio.gather(*sends))
            async with self._session_factory() as session:
                rows = (
                    await session.execute(
                        select(outbox.c.payload).where(outbox.c.id > last).order_by(outbox.c.id)
                    )
                ).scalars()
                return [Envelope.model_validate_json(payload) for payload in rows]

    async def publish_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Publish bytes that may be no envelope at all and wait until they are settled."""
        assert self._producer is not None, "driver not started"
        async with self._lock:
            sent = await self._producer.send_and_wait(topic, value=value, key=key)
            await self._until_settled([sent])

    async def _until_settled(self, sent: Sequence[RecordMetadata]) -> None:
        records = [(m.topic, m.partition, m.offset) for m in sent]
        async with asyncio.timeout(self._settle_timeout):
            while True:
                if self._settled(records):
                    return
                await asyncio.sleep(0.01)

    def outcomes(self, outcome: str) -> int:
        """How many deliveries every runner counted as ``outcome`` (``applied``,
        ``duplicate``, ``skipped``, ``dead_lettered``)."""
        return sum(
            count
            for runner in self.runners
            for (_, kind), count in runner.stats.outcomes.items()
            if kind == outcome
        )

    async def dead_letter(
        self,
        topic: str,
        event_id: uuid.UUID,
        timeout: float = 20,  # noqa: ASYNC109 - a test helper's own deadline
    ) -> ConsumerRecord[bytes, bytes]:
        """The message of event ``event_id`` parked on ``topic``'s dead-letter topic by this
        driver's consumers (another service's test consumers on the same broker may park
        the same event too; its headers name the origin and the error), or fail after
        ``timeout`` seconds."""
        mine = {runner.name for _, runners in self._groups for runner in runners}
        consumer = AIOKafkaConsumer(
            dead_letter_topic(topic),
            bootstrap_servers=self._kafka.bootstrap_servers,
            group_id=f"reader-{uuid.uuid4()}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for messages in (await consumer.getmany(timeout_ms=500)).values():
                        for message in messages:
                            parked_by = dict(message.headers or ()).get("dlq.consumer", b"")
                            if (
                                str(event_id).encode() in (message.value or b"")
                                and parked_by.decode() in mine
                            ):
                                return message
        finally:
            await consumer.stop()


class EventDrivers:
    """A test module's :class:`EventDriver` for a service, built from ``make_specs`` (its
    composition root's ``consumer_specs``) with the configuration a test asks for.

    One driver runs at a time: two would both consume every event. Asking for another
    configuration stops the running one and starts one for it (a second or so); the
    same configuration again reuses it.
    """

    def __init__(
        self,
        bootstrap: str,
        source: SessionSource,
        make_specs: Callable[..., Sequence[ConsumerSpec]],
        *,
        producer: str,
    ) -> None:
        self._bootstrap = bootstrap
        self._source = source
        self._make_specs = make_specs
        self._producer = producer
        self._config: tuple[int, dict[str, Any]] | None = None
        self._driver: EventDriver | None = None

    async def get(self, *, replicas: int = 1, **config: Any) -> EventDriver:
        """The running driver for ``config`` (keyword arguments of ``make_specs``; those
        given as None are left to its defaults) with ``replicas`` members per group."""
        config = {name: value for name, value in config.items() if value is not None}
        if self._driver is None or (replicas, config) != self._config:
            await self.aclose()
            driver = EventDriver(
                self._bootstrap,
                self._source,
                self._make_specs(**config),
                producer=self._producer,
                replicas=replicas,
            )
            self._driver = driver
            self._config = (replicas, config)
            await driver.start()
        return self._driver

    async def deliver(
        self, event: Event, *, envelope: Envelope | None = None, **config: Any
    ) -> list[Envelope]:
        """:meth:`EventDriver.deliver` by the driver for ``config``."""
        return await (await self.get(**config)).deliver(event, envelope=envelope)

    async def deliver_many(
        self, events: Sequence[Event], *, replicas: int = 1, **config: Any
    ) -> list[Envelope]:
        """:meth:`EventDriver.deliver_many` of new envelopes for ``events``, as one burst
        (to ``replicas`` instances of the service's consumers)."""
        driver = await self.get(replicas=replicas, **config)
        return await driver.deliver_many([make_envelope(e, producer="test") for e in events])

    async def aclose(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.stop()


@asynccontextmanager
async def event_driver(
    bootstrap: str,
    source: SessionSource,
    specs: Sequence[ConsumerSpec],
    *,
    producer: str,
) -> AsyncIterator[EventDriver]:
    """A started :class:`EventDriver`, stopped afterwards."""
    driver = EventDriver(bootstrap, source, specs, producer=producer)
    try:
        await driver.start()
        yield driver
    finally:
        await driver.stop()


# -- bearer tokens for an app in AUTH_MODE=jwt -------------------------------------------


class TokenMint:
    """A signing key of its own, the auth settings that trust it, and tokens signed by it.

    One per test module (making the key takes a moment): its :meth:`authenticator` goes
    into the app under test, and :meth:`bearer` makes the headers a request carries, so
    the app verifies real RS256 tokens exactly as in production, with no stand-in.
    """

    def __init__(
        self,
        subject: str = "ops@example.com",
        *,
        issuer: str = "https://id.test/",
        audience: str = "oms",
    ) -> None:
        self.subject, self.issuer, self.audience = subject, issuer, audience
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key_pem = (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def auth_settings(self, auth_mode: Literal["dev", "jwt"] = "jwt") -> AuthSettings:
        """Settings trusting this mint's tokens (in ``dev`` mode: the X-Operator header)."""
        return AuthSettings(
            auth_mode=auth_mode,
            jwt_issuer=self.issuer,
            jwt_audience=self.audience,
            jwt_public_key=self.public_key_pem,
        )

    def authenticator(self, auth_mode: Literal["dev", "jwt"] = "jwt") -> Authenticator:
        return Authenticator(self.auth_settings(auth_mode))

    def bearer(
        self,
        *roles: str,
        sub: str | None = None,
        channel: str | None = None,
        expires_in: int = 4 * 3600,
        audience: str | None = None,
    ) -> dict[str, str]:
        """``Authorization`` headers for a token holding ``roles``.

        ``sub`` defaults to the mint's subject; ``channel`` makes a partner's token;
        a negative ``expires_in`` or another ``audience`` make one the app must refuse.
        Valid for hours by default: modules mint their headers once, at import, and in
        one session of the whole suite (in random order) a module may run long after.
        """
        claims: dict[str, Any] = {
            "sub": sub or self.subject,
            "iss": self.issuer,
            "aud": audience or self.audience,
            "exp": int(time.time()) + expires_in,
            "roles": list(roles),
        }
        if channel is not None:
            claims["channel"] = channel
        return {"Authorization": f"Bearer {jwt.encode(claims, self._key, algorithm='RS256')}"}


# -- the audit trail ---------------------------------------------------------------------


async def table_snapshot(engine: AsyncEngine) -> dict[str, list[str]]:
    """Every row of every table (``alembic_version`` aside), as sorted JSON texts.

    Equal snapshots taken before and after a call mean it changed nothing anywhere, the
    audit trail and the outbox included: how a test proves a refused call left no trace.
    """
    async with engine.connect() as conn:
        tables = (
            await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        ).scalars()
        snapshot: dict[str, list[str]] = {}
        for table in sorted(set(tables) - _KEEP_TABLES):
            rows = await conn.execute(text(f'SELECT to_jsonb(x)::text FROM "{table}" x'))
            snapshot[table] = sorted(rows.scalars())
        return snapshot


async def audit_rows(engine: AsyncEngine, after_id: int = 0) -> list[dict[str, Any]]:
    """The rows of the audit trail with an id above ``after_id``, oldest first.

    Read straight from the table, not through ``GET /audit``: what the action wrote in
    its transaction, whatever the API would show.
    """
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(audit_trail).where(audit_trail.c.id > after_id).order_by(audit_trail.c.id)
        )
        return [dict(row._mapping) for row in rows]


async def last_audit_id(engine: AsyncEngine) -> int:
    """The newest row's id (0 for an empty trail): pass it to :func:`audit_rows` after a
    call to see only the rows that call wrote."""
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.coalesce(func.max(audit_trail.c.id), 0))) or 0)


async def assert_audit_trail_append_only(
    engine: AsyncEngine, *, entity: str, action: str = "append-only-check"
) -> None:
    """Check the trail's guard on a real row: rewriting or emptying it is refused.

    The trail must hold at least one row, written by a real audited action the test
    arranged (so an action that stopped auditing fails here too). Its newest row cannot
    be updated or deleted, nor can the table be truncated, each refused with SQLSTATE
    42501 and changing nothing; a row past the retention floor (which this adds, as
    ``entity``/``action``) cannot be updated either, but can be deleted, as the retention
    purge does. The trail is left exactly as found. ``engine`` connects as the tests do;
    the guard is a trigger, so it holds for the service's own role alike.
    """
    kept = await audit_rows(engine)
    if not kept:
        raise AssertionError("the audit trail is empty: arrange an audited action first")
    recent = kept[-1]["id"]
    old_at = datetime.now(UTC) - timedelta(days=AUDIT_RETENTION_FLOOR_DAYS + 1)
    async with engine.begin() as conn:
        old = (
            await conn.execute(
                insert(audit_trail)
                .values(at=old_at, actor="test", action=action, entity=entity, entity_id="old")
                .returning(audit_trail.c.id)
            )
        ).scalar_one()
    with_old = await audit_rows(engine)

    refused: dict[str, Executable] = {
        "UPDATE of a recent row": update(audit_trail)
        .where(audit_trail.c.id == recent)
        .values(actor="mallory"),
        "UPDATE of an old row": update(audit_trail)
        .where(audit_trail.c.id == old)
        .values(actor="mallory"),
        "DELETE of a recent row": delete(audit_trail).where(audit_trail.c.id == recent),
        "TRUNCATE": text(f"TRUNCATE {AUDIT_TABLE}"),
    }
    for what, statement in refused.items():
        await _assert_refused(engine, what, statement)
        if await audit_rows(engine) != with_old:
            raise AssertionError(f"the refused {what} changed the audit trail")

    try:
        async with engine.begin() as conn:
            purged = await conn.execute(delete(audit_trail).where(audit_trail.c.id == old))
    except DBAPIError as exc:
        raise AssertionError(f"a row past the retention floor cannot be deleted: {exc}") from exc
    if purged.rowcount != 1:
        raise AssertionError(f"deleting a row past the retention floor removed {purged.rowcount}")
    if await audit_rows(engine) != kept:
        raise AssertionError("purging the old row changed the rest of the audit trail")


async def _assert_refused(engine: AsyncEngine, what: str, statement: Executable) -> None:
    try:
        async with engine.begin() as conn:
            await conn.execute(statement)
    except DBAPIError as exc:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate != REFUSED_SQLSTATE:
            raise AssertionError(f"{what} failed with {sqlstate}, not refused: {exc}") from exc
    else:
        raise AssertionError(f"{what} of the audit trail was not refused")


class _Response(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


class AuditClient(Protocol):
    """What :func:`assert_audit_pages_newest_first` needs of an HTTP client (an
    ``httpx.AsyncClient`` on the app under test)."""

    async def get(self, url: str, *, params: Any = ..., headers: Any = ...) -> _Response: ...


def _entity_id(item: dict[str, Any]) -> Any:
    return item["entity_id"]


async def assert_audit_pages_newest_first(
    client: AuditClient,
    expected: Sequence[Any],
    *,
    reader: Mapping[str, str],
    refused: Mapping[str, str],
    params: Mapping[str, Any] | None = None,
    key: Callable[[dict[str, Any]], Any] = _entity_id,
    limit: int = 2,
) -> None:
    """Check ``GET /audit``: it needs a token, and one holding the reading role.

    Without a token it is 401, with the ``refused`` headers 403 as problem+json; with
    ``reader``'s it pages through the rows matching ``params`` newest first, ``limit`` a
    page, each page's ``next_before_id`` leading to the next and the last's being null.
    ``expected`` is what ``key`` (the entity id by default) gives for those rows, oldest
    first; it must be longer than a page, or there would be no paging to check.
    """
    if len(expected) <= limit:
        raise ValueError("expected must hold more rows than one page of limit")
    query = dict(params or {})
    anonymous = await client.get("/audit", params=query, headers={})
    if anonymous.status_code != 401:
        raise AssertionError(f"GET /audit without a token: {anonymous.status_code}")
    denied = await client.get("/audit", params=query, headers=refused)
    if denied.status_code != 403:
        raise AssertionError(f"GET /audit without the role: {denied.status_code} {denied.text}")
    if not denied.headers["content-type"].startswith("application/problem+json"):
        raise AssertionError(f"GET /audit's 403 is not problem+json: {denied.text}")

    seen: list[Any] = []
    before_id: int | None = None
    for _ in range(len(expected) // limit + 2):
        page_query = query | {"limit": limit}
        if before_id is not None:
            page_query["before_id"] = before_id
        answer = await client.get("/audit", params=page_query, headers=reader)
        if answer.status_code != 200:
            raise AssertionError(f"GET /audit: {answer.status_code} {answer.text}")
        page = answer.json()
        ids = [item["id"] for item in page["items"]]
        if ids != sorted(ids, reverse=True) or (before_id and any(i >= before_id for i in ids)):
            raise AssertionError(f"a page of GET /audit is not newest first: {ids}")
        seen.extend(key(item) for item in page["items"])
        before_id = page["next_before_id"]
        if before_id is None:
            break
        if len(ids) != limit or before_id != ids[-1]:
            raise AssertionError(f"next_before_id {before_id} does not follow the page {ids}")
    else:
        raise AssertionError("GET /audit kept offering another page")
    if seen != list(reversed(expected)):
        raise AssertionError(f"GET /audit, newest first: {seen}, not {list(reversed(expected))}")


async def read_topic(
    bootstrap: str,
    topic: str,
    count: int,
    timeout: float = 20,  # noqa: ASYNC109 - a test helper's own deadline
) -> list[ConsumerRecord[bytes, bytes]]:
    """The first ``count`` messages of ``topic`` (from the earliest offset, as a group of
    its own), or fail after ``timeout`` seconds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(got) < count:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(messages)
    finally:
        await consumer.stop()
    return got
