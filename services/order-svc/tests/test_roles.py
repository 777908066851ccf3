"""Roles in AUTH_MODE=jwt on order-svc, on a real PostgreSQL: a cancel without
``orders:write`` is 403 and leaves the order as it was; with it the order is cancelled
and the token's subject is the recorded actor; no token is 401; reads need ``orders:read``."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from oms_servicekit.auth import Authenticator, AuthSettings
from oms_servicekit.http import create_app
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase
from order_svc.api.exception_routes import router as exception_router
from order_svc.api.operator_routes import router as operator_router
from order_svc.api.routes import router
from order_svc.api.workflow_routes import router as workflow_router
from order_svc.bootstrap import SERVICE
from order_svc.settings import OrderSettings

ROUTERS = [router, operator_router, exception_router, workflow_router]

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def bearer(*roles: str, sub: str = "carol@example.com") -> dict[str, str]:
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": "https://id.test/",
        "aud": "oms",
        "exp": int(time.time()) + 300,
        "roles": list(roles),
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, KEY, algorithm='RS256')}"}


@pytest.fixture
async def jwt_api(db: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    settings = AuthSettings(
        auth_mode="jwt", jwt_issuer="https://id.test/", jwt_audience="oms", jwt_public_key=PUBLIC
    )
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(db, producer=SERVICE),  # type: ignore[arg-type]
        routers=ROUTERS,
        authenticator=Authenticator(settings),
    )
    app.state.settings = OrderSettings()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://order-svc") as client:
        yield client


def new_order() -> dict[str, Any]:
    return {
        "channel": "web",
        "channel_order_id": f"FE-{uuid.uuid4().hex[:8]}",
        "customer": {"platform_user_id": "u-1", "name": "Li Lei"},
        "lines": [{"line_no": 1, "sku": "SKU-1", "qty": 1, "unit_price": "5.00"}],
        "currency": "CNY",
        "paid": True,
        "shipping_address": {"region": "CN-SH", "city": "Shanghai"},
    }


async def test_placing_an_order_needs_orders_write(jwt_api: httpx.AsyncClient) -> None:
    assert (await jwt_api.post("/orders", json=new_order())).status_code == 401
    refused = await jwt_api.post("/orders", json=new_order(), headers=bearer("orders:read"))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    listed = await jwt_api.get("/orders", headers=bearer("orders:read"))
    assert listed.status_code == 200 and listed.json()["total"] == 0
    placed = await jwt_api.post("/orders", json=new_order(), headers=bearer("orders:write"))
    assert placed.status_code == 201, placed.text


async def test_an_action_without_its_role_is_403_and_changes_nothing(
    jwt_api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    placed = await jwt_api.post("/orders", json=new_order(), headers=bearer("orders:write"))
    order_id = placed.json()["id"]
    outbox_before = len(await db.outbox_rows())
    url = f"/orders/{order_id}/cancel"

    assert (await jwt_api.post(url, json={"reason": "x"})).status_code == 401
    refused = await jwt_api.post(url, json={"reason": "x"}, headers=bearer("orders:read"))
    assert refused.status_code == 403, refused.text
    assert "orders:write" in refused.json()["detail"]
    after = await jwt_api.get(f"/orders/{order_id}", headers=bearer("orders:read"))
    assert after.json()["state"] == "paid"
    assert len(await db.outbox_rows()) == outbox_before

    done = await jwt_api.post(url, json={"reason": "asked"}, headers=bearer("orders:write"))
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "cancelled"
    assert done.json()["history"][-1]["actor"] == "carol@example.com"


async def test_reads_need_orders_read_in_jwt_mode(jwt_api: httpx.AsyncClient) -> None:
    assert (await jwt_api.get("/orders")).status_code == 401
    assert (await jwt_api.get("/orders", headers=bearer("inventory:adjust"))).status_code == 403
