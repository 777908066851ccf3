"""The OMS seen from outside, over HTTP: catalogue seeding and signed channel orders."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.harness import bounded_gather
from channel_gateway.domain.signature import sign
from oms_devstack.stack import Stack

WAREHOUSES: dict[str, dict[str, Any]] = {
    "WH-SH": {
        "code": "WH-SH",
        "name": "Shanghai",
        "region": "CN-SH",
        "latitude": 31.23,
        "longitude": 121.47,
        "capabilities": ["cold_chain"],
    },
    "WH-BJ": {
        "code": "WH-BJ",
        "name": "Beijing",
        "region": "CN-BJ",
        "latitude": 39.9,
        "longitude": 116.4,
        "capabilities": [],
    },
}


def http_client(concurrency: int = 32) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(timeout=60, limits=limits)


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response


class OmsClient:
    """What a channel and an operator do to a running stack (only the services it runs)."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.http = http

    def url(self, service: str) -> str:
        return self.stack.url(service)

    # -- catalogue -------------------------------------------------------------------

    async def add_warehouses(self, codes: list[str]) -> None:
        base = self.url("inventory-svc")
        for code in codes:
            r = await self.http.post(f"{base}/warehouses", json=WAREHOUSES[code])
            expect(r, 201, 409)

    async def add_skus(self, stock: dict[str, dict[str, int]], concurrency: int = 16) -> None:
        """Create each SKU and receive its stock: ``{sku: {warehouse: qty}}``."""
        base = self.url("inventory-svc")

        async def one(item: tuple[str, dict[str, int]]) -> None:
            sku, levels = item
            r = await self.http.post(f"{base}/skus", json={"sku": sku, "name": sku})
            expect(r, 201)
            for warehouse, qty in levels.items():
                r = await self.http.post(
                    f"{base}/stock/receipts",
                    json={"sku": sku, "warehouse": warehouse, "qty": qty, "reason": "bench"},
                    headers={"X-Operator": "bench"},
                )
                expect(r, 201)

        await bounded_gather(list(stock.items()), one, concurrency)

    async def add_channels(self, names: list[str], secret: str) -> None:
        for name in names:
            r = await self.http.post(
                f"{self.url('channel-gateway')}/channels",
                json={"name": name, "type": "generic", "secret": secret},
            )
            expect(r, 201, 409)

    # -- orders ----------------------------------------------------------------------

    async def post_order(self, channel: str, raw: bytes, secret: str) -> httpx.Response:
        return await self.http.post(
            f"{self.url('channel-gateway')}/webhooks/{channel}",
            content=raw,
            headers={
                "Content-Type": "application/json",
                "X-OMS-Signature": sign(secret, int(time.time()), raw),
            },
        )

    async def count_orders(self, status: str | None = None) -> int:
        params: dict[str, Any] = {"limit": 1}
        if status:
            params["status"] = status
        r = await self.http.get(f"{self.url('order-svc')}/orders", params=params)
        return int(expect(r, 200).json()["total"])

    async def order(self, order_id: str) -> dict[str, Any] | None:
        """The order with its history, or None while order-svc does not know it."""
        r = await self.http.get(f"{self.url('order-svc')}/orders/{order_id}")
        if r.status_code == 404:
            return None
        return expect(r, 200).json()  # type: ignore[no-any-return]


def order_body(sku: str, qty: int = 1, **overrides: Any) -> bytes:
    """A paid order of the `generic` channel format, as the raw bytes a channel posts."""
    body: dict[str, Any] = {
        "channel_order_id": f"B-{uuid.uuid4().hex[:12]}",
        "customer": {
            "platform_user_id": f"u-{uuid.uuid4().hex[:8]}",
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
        "notes": "benchmark order",
        "priority": "normal",
    }
    body.update(overrides)
    return json.dumps(body).encode()


async def consistency_check(
    stack: Stack,
    *,
    grace_s: float = 2.0,
    timeout_s: float = 60.0,
    interval_s: float = 1.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[int | str, list[dict[str, Any]]]:
    """order-svc's consistency check (``GET /consistency``), polled until orders and stock
    reservations agree or ``timeout_s`` passes (events still in flight settle meanwhile).

    Answers the number of disagreements left and the first of them, or why the check
    could not be run (a string: never equal to 0, so the scenario's check fails).
    """
    url = f"{stack.url('order-svc')}/consistency"
    deadline = time.monotonic() + timeout_s
    last: int | str = "never answered"
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=120, trust_env=False, transport=transport) as http:
        while True:
            try:
                r = await http.get(url, params={"grace_s": grace_s})
            except httpx.HTTPError as exc:
                last, found = f"unreachable ({type(exc).__name__})", []
            else:
                if r.status_code == 200:
                    found = r.json()["disagreements"]
                    last = len(found)
                    if not found:
                        return 0, []
                else:
                    last, found = f"answered {r.status_code}", []
            if time.monotonic() > deadline:
                return last, found[:20]
            await asyncio.sleep(interval_s)
