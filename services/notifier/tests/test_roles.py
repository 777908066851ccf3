"""Roles in AUTH_MODE=jwt on notifier, on a real PostgreSQL: acknowledging needs
``alerts:ack`` (403 without it and the alert stays open; 401 without a token; with it the
token's subject is recorded), and subscriptions need ``channels:admin``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from notifier.alerting import AlertingConfig
from notifier.api.routes import router
from notifier.handlers import SERVICE
from oms_contracts.events import Address, CustomerIdentity, OrderCreated, OrderLine, StockLow
from oms_servicekit.http import create_app
from oms_servicekit.testing import DatabaseOnlyRuntime, TokenMint

MINT = TokenMint("frank@example.com")
BOARD = {"event_types": ["StockLow"], "target": {"type": "board"}}


@pytest.fixture
async def client(db: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(db, producer=SERVICE),  # type: ignore[arg-type]
        routers=[router],
        authenticator=MINT.authenticator(),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        yield client


async def test_subscriptions_need_channels_admin(client: httpx.AsyncClient) -> None:
    assert (await client.post("/subscriptions", json=BOARD)).status_code == 401
    refused = await client.post("/subscriptions", json=BOARD, headers=MINT.bearer("alerts:ack"))
    assert refused.status_code == 403, refused.text
    admin = MINT.bearer("channels:admin")
    assert (await client.get("/subscriptions", headers=admin)).json() == []
    made = await client.post("/subscriptions", json=BOARD, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == "frank@example.com"
    # Reading them (they name outside addresses) needs the role too.
    assert (await client.get("/subscriptions")).status_code == 401
    reader = MINT.bearer("orders:read")
    assert (await client.get("/subscriptions", headers=reader)).status_code == 403
    one = f"/subscriptions/{made.json()['id']}"
    assert (await client.get(one, headers=MINT.bearer("alerts:ack"))).status_code == 403
    assert (await client.get(one, headers=admin)).status_code == 200


async def test_an_ack_without_the_role_is_403_and_the_alert_stays_open(
    client: httpx.AsyncClient, deliver: Any
) -> None:
    at = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
    event = StockLow(sku="SKU-9", available=1, safety_stock=4, warehouse="WH-1", raised_at=at)
    await deliver(event, at=at, alerting=AlertingConfig())
    assert (await client.get("/alerts")).status_code == 401
    reader = MINT.bearer("orders:read")
    [alert] = (await client.get("/alerts", headers=reader)).json()
    url = f"/alerts/{alert['id']}/ack"

    assert (await client.post(url)).status_code == 401
    refused = await client.post(url, headers=MINT.bearer("orders:write", "channels:admin"))
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/alerts", headers=reader)).json()[0]["state"] == "open"

    acked = await client.post(url, headers=MINT.bearer("alerts:ack"))
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "frank@example.com"


async def test_events_need_orders_read_and_show_contact_data_only_with_customers_pii(
    client: httpx.AsyncClient, deliver: Any
) -> None:
    phone, email, street = "+8613700000007", "wang.fang@example.com", "9 Quiet Lane"
    event = OrderCreated(
        order_id=uuid.uuid4(),
        channel="web",
        channel_order_id="W-7",
        customer=CustomerIdentity(platform_user_id="u-7", name="Wang Fang", phone=phone,
                                  email=email),
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=1, unit_price=Decimal("9.90"))],
        currency="CNY",
        total=Decimal("9.90"),
        shipping_address=Address(name="Wang Fang", phone=phone, region="CN-SH",
                                 city="Shanghai", line1=street),
        created_at=datetime(2026, 11, 11, 10, 0, tzinfo=UTC),
    )  # fmt: skip
    await deliver(event, alerting=AlertingConfig())

    assert (await client.get("/events")).status_code == 401
    assert (await client.get("/events", headers=MINT.bearer("alerts:ack"))).status_code == 403
    masked = await client.get("/events", headers=MINT.bearer("orders:read"))
    assert masked.status_code == 200, masked.text
    for secret in (phone, email, street, "Wang Fang"):
        assert secret not in masked.text, secret
    [shown] = [e for e in masked.json() if e["event_type"] == "OrderCreated"]
    assert shown["payload"]["shipping_address"]["city"] == "Shanghai"
    full = await client.get("/events", headers=MINT.bearer("orders:read", "customers:pii"))
    assert phone in full.text and street in full.text
