"""Fixtures of channel-gateway's tests: a migrated test database and the HTTP app on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from channel_gateway.api.routes import build_router
from channel_gateway.bootstrap import MIGRATIONS, SERVICE
from channel_gateway.settings import GatewaySettings
from oms_servicekit.http import create_app
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase, migrated_database


@pytest.fixture(scope="session")
async def gateway_database() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, "test_gateway_api", producer=SERVICE) as database:
        yield database


@pytest.fixture
async def gdb(gateway_database: MigratedDatabase) -> MigratedDatabase:
    await gateway_database.truncate()
    return gateway_database


@pytest.fixture
async def client(gdb: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    runtime = DatabaseOnlyRuntime(gdb, producer=SERVICE)
    settings = GatewaySettings(max_body_bytes=256 * 1024)
    app = create_app(title=SERVICE, runtime=runtime, routers=[build_router(settings)])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://channel-gateway", timeout=120
    ) as http:
        yield http
