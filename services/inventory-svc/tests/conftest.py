"""inventory-svc's test database: one migrated database per test module (named after
it), emptied before each test that asks for ``db``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from inventory_svc.bootstrap import MIGRATIONS, SERVICE
from oms_servicekit.testing import MigratedDatabase, migrated_database


@pytest.fixture(scope="module")
async def database(request: pytest.FixtureRequest) -> AsyncIterator[MigratedDatabase]:
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    # Enough connections for the concurrency tests: every order in its own transaction.
    async with migrated_database(
        MIGRATIONS, f"test_inventory_{name}"[:40], producer=SERVICE, pool_size=25
    ) as db:
        yield db


@pytest.fixture
async def db(database: MigratedDatabase) -> MigratedDatabase:
    await database.truncate()
    return database
