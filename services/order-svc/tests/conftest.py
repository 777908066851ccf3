"""Fixtures shared by order-svc's database tests: a migrated database per test module
(emptied before each test) with the service's production consumers on a real broker
attached (``db.deliver(event)``), and the service's whole HTTP API on it, without a
broker, in dev mode (``api``) or jwt mode (``jwt_api``, with ``mint`` making its bearer
tokens)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import httpx
import pytest

from oms_servicekit.audit import audit_router
from oms_servicekit.http import create_app
from oms_servicekit.testing import (
    DatabaseOnlyRuntime,
    EventDrivers,
    MigratedDatabase,
    TokenMint,
    migrated_database,
)
from order_svc.api.exception_routes import router as exception_router
from order_svc.api.operator_routes import router as operator_router
from order_svc.api.partner_routes import router as partner_router
from order_svc.api.routes import router
from order_svc.api.routing_routes import router as routing_router
from order_svc.api.sla_routes import router as sla_router
from order_svc.api.workflow_routes import router as workflow_router
from order_svc.bootstrap import MIGRATIONS, SERVICE
from order_svc.handlers import consumer_specs
from order_svc.settings import OrderSettings

ROUTERS = [
    router,
    operator_router,
    sla_router,
    exception_router,
    routing_router,
    workflow_router,
    partner_router,
    audit_router("orders:read"),
]


@pytest.fixture(scope="module")
async def database(request: pytest.FixtureRequest) -> AsyncIterator[MigratedDatabase]:
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    async with migrated_database(MIGRATIONS, f"test_order_{name}"[:40], producer=SERVICE) as db:
        yield db


@pytest.fixture(scope="module")
async def drivers(event_broker: str, database: MigratedDatabase) -> AsyncIterator[EventDrivers]:
    """The service's production consumers on this module's database, started when a
    test first delivers an event (``db.deliver``)."""
    drivers = EventDrivers(event_broker, database, consumer_specs, producer=SERVICE)
    try:
        yield drivers
    finally:
        await drivers.aclose()


@pytest.fixture
async def db(database: MigratedDatabase, drivers: EventDrivers) -> MigratedDatabase:
    await database.truncate()
    database.drivers = drivers
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


# -- AUTH_MODE=jwt ------------------------------------------------------------------------

TOKENS = TokenMint("carol@example.com")


class Mint(Protocol):
    """Headers carrying a bearer token the ``jwt_api`` app accepts (unless told not to)."""

    def __call__(
        self,
        *roles: str,
        sub: str = ...,
        channel: str | None = ...,
        expires_in: int = ...,
        audience: str = ...,
    ) -> dict[str, str]: ...


@pytest.fixture
def mint() -> Mint:
    return TOKENS.bearer


@pytest.fixture
async def jwt_api(db: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    """The whole API in AUTH_MODE=jwt, trusting tokens from :func:`mint`."""
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(db, producer=SERVICE),  # type: ignore[arg-type]
        routers=ROUTERS,
        authenticator=TOKENS.authenticator(),
    )
    app.state.settings = OrderSettings()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://order-svc") as client:
        yield client
