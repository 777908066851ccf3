"""A whole stack (five services as real processes) for the end-to-end tests.

Started by the same launcher as `make run`, on free ports, with throwaway databases and
the session's private broker; its logs are kept under test-artifacts/ for inspection.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from channel_gateway.domain.signature import sign
from oms_devstack.stack import Stack

SECRET = "e2e-secret-123"
CHANNELS = ("web", "app", "live", "tmall")


@pytest.fixture(scope="session")
async def stack(kafka_bootstrap: str, artifacts_dir: Path) -> AsyncIterator[Stack]:
    stack = Stack.for_tests(artifacts_dir / "e2e-stack", kafka_bootstrap=kafka_bootstrap)
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop(drop_databases=True)


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # uvicorn closes a keep-alive connection after 5 idle seconds; a client that reuses
    # one at that instant reads a closed socket. Forgetting idle connections after 3 s, as
    # a well-behaved channel's client does, keeps the test from that race.
    limits = httpx.Limits(keepalive_expiry=3.0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        yield client


class Oms:
    """What a channel, an operator and a front end do to the stack, over HTTP."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.http = http
        self.gateway = stack.url("channel-gateway")
        self.orders = stack.url("order-svc")
        self.inventory = stack.url("inventory-svc")
        self.customers = stack.url("customer-svc")
        self.notifier = stack.url("notifier")

    async def setup_catalogue(self) -> None:
        for wh in (
            {
                "code": "WH-SH",
                "name": "Shanghai",
                "region": "CN-SH",
                "latitude": 31.23,
                "longitude": 121.47,
                "capabilities": ["cold_chain"],
            },
            {
                "code": "WH-BJ",
                "name": "Beijing",
                "region": "CN-BJ",
                "latitude": 39.9,
                "longitude": 116.4,
                "capabilities": [],
            },
        ):
            r = await self.http.post(f"{self.inventory}/warehouses", json=wh)
            assert r.status_code in (201, 409), r.text
        for name in CHANNELS:
            r = await self.http.post(
                f"{self.gateway}/channels", json={"name": name, "type": "generic", "secret": SECRET}
            )
            assert r.status_code in (201, 409), r.text

    async def new_sku(self, stock: dict[str, int], **attributes: Any) -> str:
        sku = f"SKU-{uuid.uuid4().hex[:8].upper()}"
        r = await self.http.post(
            f"{self.inventory}/skus", json={"sku": sku, "name": sku, "attributes": attributes}
        )
        assert r.status_code == 201, r.text
        for warehouse, qty in stock.items():
            r = await self.http.post(
                f"{self.inventory}/stock/receipts",
                json={"sku": sku, "warehouse": warehouse, "qty": qty, "reason": "e2e"},
                headers={"X-Operator": "e2e"},
            )
            assert r.status_code == 201, r.text
        return sku

    async def post_order(
        self,
        channel: str,
        body: dict[str, Any] | bytes,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        header = signature or sign(secret, timestamp or int(time.time()), raw)
        return await self.http.post(
            f"{self.gateway}/webhooks/{channel}",
            content=raw,
            headers={"Content-Type": "application/json", "X-OMS-Signature": header},
        )

    async def order(self, order_ref: str) -> dict[str, Any]:
        r = await self.http.get(f"{self.orders}/orders/{order_ref}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def find_order(self, order_ref: str) -> dict[str, Any]:
        """The order, or a placeholder while it has not reached order-svc yet."""
        try:
            r = await self.http.get(f"{self.orders}/orders/{order_ref}")
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # A pooled keep-alive connection the server closed as it was reused: the
            # poll is simply repeated (a stack that is down fails on the next tries).
            return {"state": None, "customer_id": None}
        if r.status_code in (404, 503):  # not there yet, or the database is busy: poll again
            return {"state": None, "customer_id": None}
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def stock(self, sku: str) -> dict[str, Any]:
        r = await self.http.get(f"{self.inventory}/stock/{sku}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def order_body(sku: str, qty: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel_order_id": f"T-{uuid.uuid4().hex[:10]}",
        "customer": {
            "platform_user_id": f"u-{uuid.uuid4().hex[:6]}",
            "name": "Li Lei",
            "phone": "+8613800000001",
            "email": "li.lei@example.com",
        },
        "lines": [{"sku": sku, "qty": qty, "unit_price": "19.90"}],
        "currency": "CNY",
        "paid": True,
        "paid_at": datetime.now(UTC).isoformat(),
        "shipping_address": {
            "name": "Li Lei",
            "phone": "+8613800000001",
            "region": "CN-SH",
            "city": "Shanghai",
            "line1": "1 Demo Road",
            "postal_code": "200000",
        },
        "delivery_requirements": [],
        "notes": "leave at the door",
        "priority": "normal",
    }
    body.update(overrides)
    return body


async def eventually(
    probe: Callable[[], Awaitable[Any]],
    check: Callable[[Any], bool],
    timeout: float = 30.0,
    interval: float = 0.2,
) -> Any:
    """Poll ``probe`` until ``check`` accepts its value; fail with the last value seen.

    A heavy probe (hundreds of requests) takes a longer ``interval``, so the test does not
    compete with the stack for the CPU it is waiting on."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)


async def consistency(oms: Oms, grace_s: float = 2.0) -> dict[str, Any]:
    """order-svc's consistency check now (``GET /consistency``), with a short grace period."""
    r = await oms.http.get(f"{oms.orders}/consistency", params={"grace_s": grace_s})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def assert_consistent(
    oms: Oms, grace_s: float = 2.0, timeout: float = 60.0, interval: float = 1.0
) -> dict[str, Any]:
    """Poll order-svc's consistency check until orders and stock reservations agree; fail
    listing every disagreement still there after ``timeout`` (events in flight settle
    meanwhile, and a check inventory cannot answer, 503, is simply repeated)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            r = await oms.http.get(f"{oms.orders}/consistency", params={"grace_s": grace_s})
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError) as exc:
            last = repr(exc)
        else:
            if r.status_code == 200 and not r.json()["disagreements"]:
                return r.json()  # type: ignore[no-any-return]
            assert r.status_code in (200, 503), r.text
            last = r.json()
        if asyncio.get_running_loop().time() > deadline:
            found = last.get("disagreements") if isinstance(last, dict) else None
            listed = "\n".join(
                f"  {d['order_id']} {d['state']} {d['kind']}: {d['detail']}" for d in found or []
            )
            raise AssertionError(
                f"orders and stock reservations still disagree after {timeout}s:\n"
                f"{listed or last!r}"
            )
        await asyncio.sleep(interval)


@pytest.fixture(scope="session")
async def oms(stack: Stack, http: httpx.AsyncClient) -> Oms:
    api = Oms(stack, http)
    await api.setup_catalogue()
    return api


@pytest.fixture(autouse=True)
async def orders_and_stock_agree_after_each_test(
    request: pytest.FixtureRequest,
) -> AsyncIterator[None]:
    """Every end-to-end test on the shared stack ends with the cross-service consistency
    check empty: whatever a test did, order states and stock reservations agree once its
    events have settled (a test on a stack of its own asserts it itself)."""
    yield
    if "oms" in request.fixturenames:
        await assert_consistent(request.getfixturevalue("oms"))
