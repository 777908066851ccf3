"""notifier's HTTP API on a real database (the runtime's Kafka side is not started)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from notifier.api.routes import router
from notifier.bootstrap import build_app
from notifier.handlers import SERVICE
from oms_contracts import make_envelope
from oms_contracts.events import OrderConfirmed, RejectedLine, StockRejected
from oms_servicekit.http import create_app
from oms_servicekit.problems import PROBLEM_JSON
from oms_servicekit.testing import DatabaseOnlyRuntime


@pytest.fixture
async def client(db) -> AsyncIterator[httpx.AsyncClient]:
    runtime = DatabaseOnlyRuntime(db, producer=SERVICE)
    app = create_app(title=SERVICE, runtime=runtime, routers=[router])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        yield client


def confirmed(order_id: uuid.UUID) -> OrderConfirmed:
    return OrderConfirmed(order_id=order_id, channel="shopee", confirmed_at=datetime.now(UTC))


def rejected(order_id: uuid.UUID) -> StockRejected:
    return StockRejected(
        order_id=order_id,
        lines=[RejectedLine(line_no=1, sku="SKU-A", qty=1, reason="insufficient", available=0)],
        rejected_at=datetime.now(UTC),
    )


def test_build_app_connects_nothing() -> None:
    assert set(build_app().openapi()["paths"]) >= {"/events", "/alerts", "/healthz", "/readyz"}


async def test_events_newest_first_and_filtered(client, deliver) -> None:
    order_a, order_b = uuid.uuid4(), uuid.uuid4()
    sent = [confirmed(order_a), rejected(order_a), confirmed(order_b)]
    envelopes = [make_envelope(e, producer="test") for e in sent]
    for event, envelope in zip(sent, envelopes, strict=True):
        await deliver(event, envelope=envelope)

    everything = (await client.get("/events")).json()
    assert [e["event_id"] for e in everything] == [str(e.event_id) for e in reversed(envelopes)]
    assert everything[0]["payload"]["order_id"] == str(order_b)

    assert len((await client.get("/events", params={"limit": 2})).json()) == 2
    of_a = (await client.get("/events", params={"key": str(order_a)})).json()
    assert [e["event_type"] for e in of_a] == ["StockRejected", "OrderConfirmed"]
    confirmations = (await client.get("/events", params={"event_type": "OrderConfirmed"})).json()
    assert {e["key"] for e in confirmations} == {str(order_a), str(order_b)}
    both = (
        await client.get("/events", params={"event_type": "OrderConfirmed", "key": str(order_b)})
    ).json()
    assert len(both) == 1
    # Empty filters are no filters.
    assert len((await client.get("/events?event_type=&key=")).json()) == 3


async def test_alerts_newest_first(client, deliver) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    for order_id in (first, second):
        event = rejected(order_id)
        await deliver(event)

    listed = (await client.get("/alerts")).json()
    assert [a["subject"] for a in listed] == [str(second), str(first)]
    assert listed[0]["state"] == "open"
    assert listed[0]["message"] == "stock rejected: line 1 SKU-A x1: insufficient (available 0)"
    assert len((await client.get("/alerts", params={"limit": 1})).json()) == 1
    assert (await client.get("/alerts", params={"state": "resolved"})).json() == []


async def test_empty_lists(client) -> None:
    assert (await client.get("/events")).json() == []
    assert (await client.get("/alerts")).json() == []


@pytest.mark.parametrize("path", ["/events", "/alerts"])
@pytest.mark.parametrize("limit", ["0", "501", "-1", "lots"])
async def test_invalid_limit_is_a_422_problem(client, path, limit) -> None:
    response = await client.get(path, params={"limit": limit})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"] == "limit"


async def test_limit_bounds_are_accepted(client) -> None:
    for limit in (1, 500):
        assert (await client.get("/events", params={"limit": limit})).status_code == 200
