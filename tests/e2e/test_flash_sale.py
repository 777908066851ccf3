"""Issue 3, end to end: a flash sale cannot oversell, nor pass a channel's cap.

One SKU with 1,000 units, policy ``live: 60%``; 1,800 buyers on three channels (1,400 on
live, far above its cap) place paid orders concurrently through the gateway, in a shuffled
order (the seed is printed). Exactly 1,000 units end reserved, live holds exactly 600, each
of live's other orders ends in ``exception`` as ``channel_cap``, and the ledger's deltas
sum to the stock row. The same holds with two
inventory-svc instances sharing the work in one consumer group.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from oms_devstack.specs import DEFAULT_SERVICES, INVENTORY_SVC
from oms_devstack.stack import Stack
from tests.e2e.conftest import Oms, assert_consistent, eventually, order_body

#: The sale's size relative to the issue's (1,000 units, 1,800 buyers): the mission-size
#: sale by default (about half a minute on 2 cores now that reservations are batched);
#: OMS_FLASH_SALE_SCALE=0.2 runs a fifth of it for a quick local check.
SCALE = float(os.environ.get("OMS_FLASH_SALE_SCALE", "1"))
#: The two-instance variant proves the same with a quarter as many buyers (its point is
#: the shared consumer group, not the size; 450 buyers still overrun live's cap).
REPLICA_SCALE = SCALE / 4


def sale_size(scale: float) -> tuple[int, int, dict[str, int]]:
    """Units, live's cap, and buyers per channel at ``scale`` of the issue's sale.

    Live's demand (1,400 of 1,800 buyers) is far above its cap (600 of 1,000 units), and
    the other channels ask for exactly what live's cap leaves (400): whatever the order
    the orders are processed in, live ends exactly at its cap, its overflow is refused as
    ``channel_cap``, and every unit is sold. A broken cap cannot pass: live would get more.
    """
    units = round(1_000 * scale)
    cap = units * 60 // 100
    others = units - cap
    buyers = {
        "live": round(1_800 * scale) - others,
        "tmall": others // 2,
        "app": others - others // 2,
    }
    return units, cap, buyers


#: Orders read per look while waiting for the sale to settle (see ``settle``).
PROBE_CHUNK = 100

#: The order buyers arrive in is shuffled with this seed (printed; set it to replay a run).
SEED = int(os.environ.get("OMS_FLASH_SALE_SEED", str(random.SystemRandom().randrange(10**6))))


CLIENT_CONCURRENCY = 50


async def ledger_sums(oms: Oms, sku: str) -> dict[str, tuple[int, int]]:
    sums: dict[str, tuple[int, int]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"sku": sku, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        r = await oms.http.get(f"{oms.inventory}/ledger", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        for row in page["items"]:
            on_hand, reserved = sums.get(row["warehouse"], (0, 0))
            sums[row["warehouse"]] = (
                on_hand + row["delta_on_hand"],
                reserved + row["delta_reserved"],
            )
        cursor = page["next_cursor"]
        if cursor is None:
            return sums


async def test_flash_sale_never_oversells_nor_passes_the_live_cap(oms: Oms) -> None:
    await run_flash_sale(oms, SCALE)


#: A second inventory-svc process: same database, same consumer group, its own port.
INVENTORY_REPLICA = replace(
    INVENTORY_SVC, name="inventory-svc-b", url_env="INVENTORY_SVC_B_URL", port_env=None
)


@pytest.fixture(scope="module")
async def replica_stack(artifacts_dir: Path) -> AsyncIterator[Stack]:
    # Its own broker: the session stack's inventory-svc (same group name) must not take
    # partitions from these two.
    stack = Stack.for_tests(
        artifacts_dir / "e2e-replica-stack",
        services=(*DEFAULT_SERVICES, INVENTORY_REPLICA),
    )
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop(drop_databases=True)


async def applied_reservations(http: httpx.AsyncClient, base_url: str) -> float:
    """Order events this inventory-svc instance applied, from its /metrics."""
    text = (await http.get(f"{base_url}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("oms_events_consumed_total{")
        and 'topic="oms.orders"' in line
        and 'outcome="applied"' in line
    )


async def test_two_inventory_instances_in_one_group_never_oversell_either(
    replica_stack: Stack, http: httpx.AsyncClient
) -> None:
    oms = Oms(replica_stack, http)
    await oms.setup_catalogue()
    await run_flash_sale(oms, REPLICA_SCALE)
    # Both instances did part of the work (the orders' partitions are spread over both).
    first = await applied_reservations(http, replica_stack.url("inventory-svc"))
    second = await applied_reservations(http, replica_stack.url("inventory-svc-b"))
    assert first > 0 and second > 0, (first, second)


async def run_flash_sale(oms: Oms, scale: float) -> None:
    UNITS, LIVE_CAP, BUYERS = sale_size(scale)
    started = time.monotonic()
    sku = await oms.new_sku({"WH-SH": UNITS})
    r = await oms.http.put(
        f"{oms.inventory}/skus/{sku}/policy", json={"channel_caps": {"live": "60%"}}
    )
    assert r.status_code == 200, r.text
    assert {c["channel"]: c["cap_units"] for c in r.json()["channels"]} == {"live": LIVE_CAP}

    buyers = [ch for ch, n in BUYERS.items() for _ in range(n)]
    # The channels' buyers arrive mixed, as in a real sale (seeded, printed).
    random.Random(SEED).shuffle(buyers)
    print(f"\n  flash sale shuffled with OMS_FLASH_SALE_SEED={SEED}", flush=True)
    gate = asyncio.Semaphore(CLIENT_CONCURRENCY)

    retries = Counter[str]()

    async def buy(channel: str) -> tuple[str, str]:
        body = order_body(sku)
        # A channel retries a webhook answered 503 ("nothing was changed, retry later"),
        # with the same body: the gateway's de-duplication keeps it one order.
        for attempt in range(20):
            async with gate:
                r = await oms.post_order(channel, body)
            if r.status_code != 503:
                break
            retries[channel] += 1
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        assert r.status_code in (200, 202), r.text
        return channel, r.json()["order_ref"]

    placed = await asyncio.gather(*(buy(ch) for ch in buyers))
    posted = time.monotonic()

    final: dict[str, dict[str, Any]] = {}

    async def settle() -> int:
        """Look at the unsettled orders, oldest first, a hundred at a time, and stop at
        the first hundred with one still unsettled: a round while the sale is being
        worked on costs a hundred reads, not 1,800 that take the cores from the sale."""
        pending = [ref for _, ref in placed if ref not in final]

        async def probe(ref: str) -> None:
            async with gate:
                order = await oms.find_order(ref)
            if order["state"] in ("routed", "exception"):
                final[ref] = order

        for start in range(0, len(pending), PROBE_CHUNK):
            chunk = pending[start : start + PROBE_CHUNK]
            await asyncio.gather(*(probe(ref) for ref in chunk))
            if any(ref not in final for ref in chunk):
                break
        return len(placed) - len(final)

    async def progress() -> int:
        left = await settle()
        print(f"  {time.monotonic() - started:.0f}s: {left} orders not settled", flush=True)
        return left

    print(
        f"\n  posted {len(placed)} orders in {posted - started:.1f}s"
        f" (503 retries: {sum(retries.values())})",
        flush=True,
    )
    await eventually(progress, lambda left: left == 0, timeout=240, interval=2.0)
    settled = time.monotonic()

    states = Counter(order["state"] for order in final.values())
    assert states == {"routed": UNITS, "exception": len(buyers) - UNITS}
    confirmed_by_channel = Counter(ch for ch, ref in placed if final[ref]["state"] == "routed")
    # Live exactly at its cap; the other channels got the rest.
    assert confirmed_by_channel == {
        "live": LIVE_CAP,
        "tmall": BUYERS["tmall"],
        "app": BUYERS["app"],
    }
    reasons = Counter(
        "channel_cap"
        if "channel_cap" in (o["exception_reason"] or "")
        else "insufficient"
        if "insufficient" in (o["exception_reason"] or "")
        else o["exception_reason"]
        for o in final.values()
        if o["state"] == "exception"
    )
    # Every refusal is live's overflow, refused by its cap (not by a lack of stock).
    assert reasons == {"channel_cap": BUYERS["live"] - LIVE_CAP}, reasons

    stock = await oms.stock(sku)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (UNITS, UNITS, 0)
    live = next(c for c in stock["channels"] if c["channel"] == "live")
    assert live["reserved"] == confirmed_by_channel["live"] <= LIVE_CAP
    assert {c["channel"]: c["reserved"] for c in stock["channels"]} == dict(confirmed_by_channel)
    assert await ledger_sums(oms, sku) == {
        w["warehouse"]: (w["on_hand"], w["reserved"]) for w in stock["warehouses"]
    }
    print(
        f"\nflash sale: {len(buyers)} orders posted in {posted - started:.1f}s, "
        f"settled after {settled - started:.1f}s; confirmed by channel "
        f"{dict(confirmed_by_channel)}; rejections {dict(reasons)}"
    )
    # Every order's state agrees with the stock inventory holds for it.
    await assert_consistent(oms)
