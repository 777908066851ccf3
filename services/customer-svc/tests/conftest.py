"""Fixtures of customer-svc's tests: the shared test-database helpers bound to this service.

The helpers themselves live in :mod:`oms_servicekit.testing`; only the migrations, the
service name and the database prefix are customer-svc's.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from customer_svc.api.routes import router
from customer_svc.bootstrap import MIGRATIONS, SERVICE
from customer_svc.handlers import consumer_specs
from oms_contracts import Envelope
from oms_servicekit import testing
from oms_servicekit.http import create_app
from oms_servicekit.testing import DatabaseOnlyRuntime, EventDrivers, MigratedDatabase


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[MigratedDatabase]:
    async with testing.migrated_database(MIGRATIONS, "test_customer", producer=SERVICE) as db:
        yield db


@pytest.fixture(scope="session")
def engine(database: MigratedDatabase) -> AsyncEngine:
    return database.engine


@pytest.fixture
async def db(database: MigratedDatabase) -> async_sessionmaker[AsyncSession]:
    """The session factory of the test database, emptied before the test."""
    await database.truncate()
    return database.session_factory


@pytest.fixture(scope="session")
async def drivers(event_broker: str, database: MigratedDatabase) -> AsyncIterator[EventDrivers]:
    """The service's production consumers on the test database, started on first use."""
    drivers = EventDrivers(event_broker, database, consumer_specs, producer=SERVICE)
    try:
        yield drivers
    finally:
        await drivers.aclose()


@pytest.fixture
def deliver(
    db: async_sessionmaker[AsyncSession], drivers: EventDrivers
) -> Callable[..., Awaitable[list[Envelope]]]:
    """``deliver(event, *, envelope=None)``: the event published to its topic and applied
    by the service's consumers; the events they emitted."""
    return drivers.deliver


@pytest.fixture
def deliver_many(
    db: async_sessionmaker[AsyncSession], drivers: EventDrivers
) -> Callable[..., Awaitable[list[Envelope]]]:
    """``deliver_many(events, *, replicas=1)``: one burst; every event emitted meanwhile."""
    return drivers.deliver_many


@pytest.fixture
def read_outbox(db: async_sessionmaker[AsyncSession]) -> Callable[[], Awaitable[list[Any]]]:
    return functools.partial(testing.outbox_rows, db)


@pytest.fixture
async def client(db) -> AsyncIterator[httpx.AsyncClient]:
    """The service's HTTP routes on the test database (the runtime's Kafka side is not
    started)."""
    runtime = DatabaseOnlyRuntime(db, producer=SERVICE)
    app = create_app(title=SERVICE, runtime=runtime, routers=[router])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://customer-svc") as client:
        yield client
