"""The credit check where a rule asks for it, on a stack set up as `make run` sets it up.

The demo configuration (the fake bureau, ``CREDIT_CHECK_CHANNELS`` naming the seeded
``distributor`` channel) and the demo seed (its generic webhook channels, with the demo
secret): a prepaid retail order is routed without ever waiting for the bureau, a
distributor's order goes through ``credit_check`` first.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channel_gateway.domain.signature import sign
from oms_devstack.config import demo_credit_env
from oms_devstack.seed import demo_secret, seed_demo
from oms_devstack.specs import CHANNEL_GATEWAY, FAKE_CREDIT_BUREAU, INVENTORY_SVC, ORDER_SVC
from oms_devstack.stack import Stack
from tests.e2e.conftest import eventually, order_body

#: A paid order's way to routed once its credit is OK (or not asked about).
UNCHECKED = ["paid", "reserved", "confirmed", "routed"]


@pytest.fixture(scope="module")
async def demo_stack(artifacts_dir: Path) -> AsyncIterator[Stack]:
    # Its own broker: its consumer groups have the shared stack's names.
    stack = Stack.for_tests(
        artifacts_dir / "e2e-credit-rule-stack",
        services=(ORDER_SVC, INVENTORY_SVC, CHANNEL_GATEWAY, FAKE_CREDIT_BUREAU),
    )
    # The bureau's port is only known once the test stack has picked its free ports.
    stack.config.service_env["order-svc"] = demo_credit_env(stack.url("credit-bureau"), {})
    await stack.start()
    try:
        await seed_demo(stack.url("inventory-svc"), stack.url("channel-gateway"))
        yield stack
    finally:
        await stack.stop(drop_databases=True)


async def routed(stack: Stack, http: httpx.AsyncClient, channel: str) -> dict[str, Any]:
    raw = json.dumps(order_body("SKU-1")).encode()
    r = await http.post(
        f"{stack.url('channel-gateway')}/webhooks/{channel}",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-OMS-Signature": sign(demo_secret(), int(time.time()), raw),
        },
    )
    assert r.status_code == 202, r.text
    ref = r.json()["order_ref"]

    async def find() -> dict[str, Any]:
        r = await http.get(f"{stack.url('order-svc')}/orders/{ref}")
        return r.json() if r.status_code == 200 else {"state": None}  # type: ignore[no-any-return]

    return await eventually(find, lambda o: o["state"] == "routed", 60)  # type: ignore[no-any-return]


async def test_only_the_distributors_orders_wait_for_the_bureau(
    demo_stack: Stack, http: httpx.AsyncClient
) -> None:
    bureau = demo_stack.url("credit-bureau")
    retail = await routed(demo_stack, http, "web")
    assert [h["to_state"] for h in retail["history"]] == ["received", *UNCHECKED]
    assert (await http.get(f"{bureau}/control")).json()["calls"] == 0

    distributor = await routed(demo_stack, http, "distributor")
    checked = ["received", "paid", "credit_check", *UNCHECKED]
    assert [h["to_state"] for h in distributor["history"]] == checked
    assert distributor["credit_degraded"] is False
    assert (await http.get(f"{bureau}/control")).json()["calls"] == 1
