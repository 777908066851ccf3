"""Fixtures of notifier's tests: the shared test-database helpers bound to this service.

The helpers themselves live in :mod:`oms_servicekit.testing`; only the migrations, the
service name and the database prefix are notifier's.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notifier.bootstrap import MIGRATIONS
from notifier.handlers import SERVICE
from oms_contracts import Envelope
from oms_servicekit import testing
from oms_servicekit.testing import MigratedDatabase


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


@pytest.fixture
def apply_event(db: async_sessionmaker[AsyncSession]) -> Callable[..., Awaitable[list[Envelope]]]:
    """``apply_event(handler, event, *, envelope=None, consumer=SERVICE)``, as the runner does."""
    return functools.partial(testing.apply_event, db, consumer=SERVICE, producer=SERVICE)


@pytest.fixture
def read_outbox(db: async_sessionmaker[AsyncSession]) -> Callable[[], Awaitable[list[Any]]]:
    return functools.partial(testing.outbox_rows, db)
