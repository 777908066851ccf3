"""Roles in AUTH_MODE=jwt on inventory-svc, on a real PostgreSQL: stock and catalogue
changes need ``inventory:adjust`` (403 without it, and nothing changes), no token is 401,
and with the role the receipt lands."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from inventory_svc.api.routes import router
from inventory_svc.bootstrap import SERVICE
from oms_servicekit.http import create_app
from oms_servicekit.testing import (
    DatabaseOnlyRuntime,
    MigratedDatabase,
    TokenMint,
)

MINT = TokenMint("keeper@example.com")
WAREHOUSE = {"code": "WH-SH", "name": "Shanghai", "region": "CN-SH", "latitude": 31.2,
             "longitude": 121.5}  # fmt: skip
RECEIPT = {"sku": "SKU-1", "warehouse": "WH-SH", "qty": 10, "reason": "initial"}


@pytest.fixture
async def client(database: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    await database.truncate()
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(database, producer=SERVICE),  # type: ignore[arg-type]
        routers=[router],
        authenticator=MINT.authenticator(),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
        yield client


async def test_catalogue_set_up_needs_inventory_adjust(client: httpx.AsyncClient) -> None:
    assert (await client.post("/warehouses", json=WAREHOUSE)).status_code == 401
    refused = await client.post("/warehouses", json=WAREHOUSE, headers=MINT.bearer("orders:write"))
    assert refused.status_code == 403, refused.text
    assert (await client.get("/warehouses")).json() == []
    adjuster = MINT.bearer("inventory:adjust")
    added = await client.post("/warehouses", json=WAREHOUSE, headers=adjuster)
    assert added.status_code == 201, added.text


async def test_a_receipt_without_the_role_is_403_and_changes_nothing(
    client: httpx.AsyncClient, database: MigratedDatabase
) -> None:
    adjuster = MINT.bearer("inventory:adjust")
    assert (await client.post("/warehouses", json=WAREHOUSE, headers=adjuster)).status_code == 201
    sku = {"sku": "SKU-1", "name": "Tea", "attributes": {}}
    assert (await client.post("/skus", json=sku, headers=adjuster)).status_code == 201
    outbox_before = len(await database.outbox_rows())

    assert (await client.post("/stock/receipts", json=RECEIPT)).status_code == 401
    refused = await client.post("/stock/receipts", json=RECEIPT, headers=MINT.bearer("orders:read"))
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/stock/SKU-1")).json()["on_hand"] == 0
    assert len(await database.outbox_rows()) == outbox_before

    done = await client.post("/stock/receipts", json=RECEIPT, headers=adjuster)
    assert done.status_code == 201, done.text
    assert done.json()["on_hand"] == 10
    ledger = (await client.get("/ledger", params={"sku": "SKU-1"})).json()
    assert ledger["items"][0]["operator"] == "keeper@example.com"
