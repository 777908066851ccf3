"""Fixtures shared by order-svc's database tests: a migrated database per test module
(emptied before each test) and the service's whole HTTP API on it, without a broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from oms_servicekit.http import create_app
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase, migrated_database
from order_svc.api.exception_routes import router as exception_router
from order_svc.api.operator_routes import router as operator_router
from order_svc.api.routes import router
from order_svc.api.routing_routes import router as routing_router
from order_svc.api.sla_routes import router as sla_router
from order_svc.api.workflow_routes import router as workflow_router
from order_svc.bootstrap import MIGRATIONS, SERVICE
from order_svc.settings import OrderSettings

ROUTERS = [router, operator_router, sla_router, exception_router, routing_router, workflow_router]


@pytest.fixture(scope="module")
async def database(request: pytest.FixtureRequest) -> AsyncIterator[MigratedDatabase]:
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    async with migrated_database(MIGRATIONS, f"test_order_{name}"[:40], producer=SERVICE) as db:
        yield db


@pytest.fixture
async def db(database: MigratedDatabase) -> MigratedDatabase:
    await database.truncate()
    return database


@pytest.fixture
async def api(db: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(db, producer=SERVICE),  # type: ignore[arg-type]
        routers=ROUTERS,
    )
    app.state.settings = OrderSettings()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://order-svc") as client:
        yield client
