"""inventory-svc's test database: one migrated database per test module (named after
it), emptied before each test that asks for ``db``, with the service's production
consumers on a real broker attached (``db.deliver(event)``)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from inventory_svc.bootstrap import MIGRATIONS, SERVICE
from inventory_svc.handlers import consumer_specs
from oms_servicekit.testing import EventDrivers, MigratedDatabase, migrated_database

#: The reservation TTL the tests' consumers run with (``reservation_ttl=`` overrides it).
RESERVATION_TTL = timedelta(hours=1)


@pytest.fixture(scope="module")
async def database(request: pytest.FixtureRequest) -> AsyncIterator[MigratedDatabase]:
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    # Enough connections for the concurrency tests: every order in its own transaction.
    async with migrated_database(
        MIGRATIONS, f"test_inventory_{name}"[:40], producer=SERVICE, pool_size=25
    ) as db:
        yield db


@pytest.fixture(scope="module")
async def drivers(event_broker: str, database: MigratedDatabase) -> AsyncIterator[EventDrivers]:
    """The service's production consumers on this module's database, started when a
    test first delivers an event (``db.deliver``)."""
    specs = functools.partial(consumer_specs, reservation_ttl=RESERVATION_TTL)
    drivers = EventDrivers(event_broker, database, specs, producer=SERVICE)
    try:
        yield drivers
    finally:
        await drivers.aclose()


@pytest.fixture
async def db(database: MigratedDatabase, drivers: EventDrivers) -> MigratedDatabase:
    await database.truncate()
    database.drivers = drivers
    return database
