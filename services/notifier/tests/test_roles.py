"""Roles in AUTH_MODE=jwt on notifier, on a real PostgreSQL: acknowledging needs
``alerts:ack`` (403 without it and the alert stays open; 401 without a token; with it the
token's subject is recorded), and subscriptions need ``channels:admin``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notifier.alerting import AlertingConfig
from notifier.api.routes import router
from notifier.handlers import SERVICE, event_handlers
from oms_contracts.events import StockLow
from oms_servicekit.auth import Authenticator, AuthSettings
from oms_servicekit.http import create_app
from oms_servicekit.testing import DatabaseOnlyRuntime

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
BOARD = {"event_types": ["StockLow"], "target": {"type": "board"}}


def bearer(*roles: str, sub: str = "frank@example.com") -> dict[str, str]:
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": "https://id.test/",
        "aud": "oms",
        "exp": int(time.time()) + 300,
        "roles": list(roles),
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, KEY, algorithm='RS256')}"}


@pytest.fixture
async def client(db: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = AuthSettings(
        auth_mode="jwt", jwt_issuer="https://id.test/", jwt_audience="oms", jwt_public_key=PUBLIC
    )
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(db, producer=SERVICE),  # type: ignore[arg-type]
        routers=[router],
        authenticator=Authenticator(settings),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        yield client


async def test_subscriptions_need_channels_admin(client: httpx.AsyncClient) -> None:
    assert (await client.post("/subscriptions", json=BOARD)).status_code == 401
    refused = await client.post("/subscriptions", json=BOARD, headers=bearer("alerts:ack"))
    assert refused.status_code == 403, refused.text
    assert (await client.get("/subscriptions")).json() == []
    made = await client.post("/subscriptions", json=BOARD, headers=bearer("channels:admin"))
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == "frank@example.com"


async def test_an_ack_without_the_role_is_403_and_the_alert_stays_open(
    client: httpx.AsyncClient, apply_event: Any
) -> None:
    at = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
    event = StockLow(sku="SKU-9", available=1, safety_stock=4, warehouse="WH-1", raised_at=at)
    handlers = event_handlers(alerting=AlertingConfig(), clock=lambda: at)
    await apply_event(handlers[event.event_type], event)
    [alert] = (await client.get("/alerts")).json()
    url = f"/alerts/{alert['id']}/ack"

    assert (await client.post(url)).status_code == 401
    refused = await client.post(url, headers=bearer("orders:write", "channels:admin"))
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/alerts")).json()[0]["state"] == "open"

    acked = await client.post(url, headers=bearer("alerts:ack"))
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "frank@example.com"
