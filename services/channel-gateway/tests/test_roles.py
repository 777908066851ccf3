"""Roles in AUTH_MODE=jwt on channel-gateway, on a real PostgreSQL: channel configuration
needs ``channels:admin`` (403 without it, and nothing changes; 401 without a token), and
so does reading it (it names marketplaces and their app keys; session keys are never
shown), while webhooks stay authenticated by the platform's signature alone, with no
token."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from channel_gateway.api.routes import build_router
from channel_gateway.bootstrap import SERVICE
from channel_gateway.domain.signature import sign
from channel_gateway.settings import GatewaySettings
from oms_servicekit.http import create_app
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase, TokenMint

MINT = TokenMint("erin@example.com")
SECRET = "shpss_0123456789abcdef"
CHANNEL = {"name": "web", "type": "generic", "secret": SECRET}


@pytest.fixture
async def jwt_client(gdb: MigratedDatabase) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(gdb, producer=SERVICE),  # type: ignore[arg-type]
        routers=[build_router(GatewaySettings())],
        authenticator=MINT.authenticator(),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://channel-gateway") as c:
        yield c


async def test_channel_configuration_needs_channels_admin(jwt_client: httpx.AsyncClient) -> None:
    assert (await jwt_client.post("/channels", json=CHANNEL)).status_code == 401
    refused = await jwt_client.post("/channels", json=CHANNEL, headers=MINT.bearer("orders:write"))
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    admin = MINT.bearer("channels:admin")
    assert (await jwt_client.get("/channels", headers=admin)).json() == []

    assert (await jwt_client.post("/channels", json=CHANNEL, headers=admin)).status_code == 201
    patch = {"clock_skew_s": 5}
    reader = MINT.bearer("orders:read")
    refused = await jwt_client.patch("/channels/web", json=patch, headers=reader)
    assert refused.status_code == 403
    assert (await jwt_client.get("/channels/web", headers=admin)).json()["clock_skew_s"] != 5
    done = await jwt_client.patch("/channels/web", json=patch, headers=admin)
    assert done.status_code == 200 and done.json()["clock_skew_s"] == 5


async def test_webhooks_take_no_token_only_the_signature(jwt_client: httpx.AsyncClient) -> None:
    admin = MINT.bearer("channels:admin")
    assert (await jwt_client.post("/channels", json=CHANNEL, headers=admin)).status_code == 201
    body = {
        "channel_order_id": "G-1",
        "customer": {"platform_user_id": "u1"},
        "lines": [{"sku": "SKU-1", "qty": 1, "unit_price": "5.00"}],
        "currency": "CNY",
        "shipping_address": {"region": "CN-SH"},
    }
    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-OMS-Signature": sign(SECRET, int(time.time()), raw),
    }
    assert (await jwt_client.post("/webhooks/web", content=raw, headers=headers)).status_code == 202


async def test_reading_the_configuration_needs_channels_admin_and_hides_session_keys(
    jwt_client: httpx.AsyncClient,
) -> None:
    admin = MINT.bearer("channels:admin")
    pull = {"base_url": "http://127.0.0.1:9/", "app_key": "app-1", "session": "sess-secret-42"}
    created = await jwt_client.post(
        "/channels", json={**CHANNEL, "name": "tb", "type": "pull", "pull": pull}, headers=admin
    )
    assert created.status_code == 201, created.text
    for path in ("/channels", "/channels/tb", "/channels/tb/sku-map", "/channels/tb/deliveries"):
        assert (await jwt_client.get(path)).status_code == 401, path
        refused = await jwt_client.get(path, headers=MINT.bearer("orders:read", "customers:pii"))
        assert refused.status_code == 403, path
        allowed = await jwt_client.get(path, headers=admin)
        assert allowed.status_code == 200, (path, allowed.text)
        assert "sess-secret-42" not in allowed.text, path
    shown = (await jwt_client.get("/channels/tb", headers=admin)).json()
    assert shown["pull"]["session"] == "***" and shown["pull"]["app_key"] == "app-1"

    # Sending back what GET showed keeps the stored key; a new key replaces it.
    echoed = {**shown["pull"], "page_size": 20}
    again = await jwt_client.patch("/channels/tb", json={"pull": echoed}, headers=admin)
    assert again.status_code == 200, again.text
    stored = await _stored_pull(jwt_client)
    assert stored == {"session": "sess-secret-42", "page_size": 20}


async def _stored_pull(client: httpx.AsyncClient) -> dict[str, Any]:
    """The pull settings as stored (not as answered), read through the app's runtime."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    runtime = transport.app.state.runtime  # type: ignore[attr-defined]
    from channel_gateway.adapters.repository import GatewayRepository

    async with runtime.uow() as uow:
        channel = await GatewayRepository(uow.session).get_channel("tb")
    assert channel is not None and channel.settings.pull is not None
    return {"session": channel.settings.pull.session, "page_size": channel.settings.pull.page_size}
