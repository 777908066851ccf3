"""Fixtures of notifier's tests: the shared test-database helpers bound to this service.

The helpers themselves live in :mod:`oms_servicekit.testing`; only the migrations, the
service name and the database prefix are notifier's.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notifier.alerting import AlertingConfig
from notifier.bootstrap import MIGRATIONS
from notifier.handlers import SERVICE, consumer_specs, event_handlers
from oms_contracts import Envelope, Event
from oms_servicekit import testing
from oms_servicekit.runtime import ConsumerSpec
from oms_servicekit.testing import EventDrivers, MigratedDatabase


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[MigratedDatabase]:
    async with testing.migrated_database(MIGRATIONS, "test_notifier", producer=SERVICE) as db:
        yield db


@pytest.fixture(scope="session")
def engine(database: MigratedDatabase) -> AsyncEngine:
    return database.engine


@pytest.fixture
async def db(database: MigratedDatabase) -> async_sessionmaker[AsyncSession]:
    """The session factory of the test database, emptied before the test."""
    await database.truncate()
    return database.session_factory


class SettableClock:
    """The alert handlers' clock in tests: the time a delivery gives, else the real one."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at or datetime.now(UTC)


#: One clock for every consumer the tests run, so a new time needs no new consumer.
CLOCK = SettableClock()


def specs(
    alerting: AlertingConfig | None = None, group_id: str | None = None
) -> list[ConsumerSpec]:
    """The service's ``consumer_specs`` with the tests' clock (and another group name)."""
    return [
        dataclasses.replace(
            spec,
            group_id=group_id or spec.group_id,
            handlers=event_handlers(alerting=alerting, clock=CLOCK),
        )
        for spec in consumer_specs(alerting)
    ]


@pytest.fixture(scope="session")
async def drivers(event_broker: str, database: MigratedDatabase) -> AsyncIterator[EventDrivers]:
    """The service's production consumers on the test database, started on first use."""
    drivers = EventDrivers(event_broker, database, specs, producer=SERVICE)
    try:
        yield drivers
    finally:
        await drivers.aclose()


class Deliver(Protocol):
    async def __call__(
        self,
        event: Event,
        *,
        envelope: Envelope | None = None,
        at: datetime | None = None,
        alerting: AlertingConfig | None = None,
        group_id: str | None = None,
    ) -> list[Envelope]: ...


@pytest.fixture
def deliver(db: async_sessionmaker[AsyncSession], drivers: EventDrivers) -> Deliver:
    """``deliver(event, *, envelope=None, at=None, alerting=None, group_id=None)``: the
    event published to its topic and applied by the service's consumers (built with
    ``alerting``, in consumer group ``group_id``, their clock saying ``at``); the events
    they emitted."""

    async def deliver(
        event: Event,
        *,
        envelope: Envelope | None = None,
        at: datetime | None = None,
        alerting: AlertingConfig | None = None,
        group_id: str | None = None,
    ) -> list[Envelope]:
        CLOCK.at = at
        return await drivers.deliver(event, envelope=envelope, alerting=alerting, group_id=group_id)

    return deliver


@pytest.fixture
def read_outbox(db: async_sessionmaker[AsyncSession]) -> Callable[[], Awaitable[list[Any]]]:
    return functools.partial(testing.outbox_rows, db)
