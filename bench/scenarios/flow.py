"""flow: paid orders per second from the channel webhook to "confirmed", all five services.

Ours: N signed, paid orders posted to channel-gateway from 4 channels by 32 concurrent
clients (each its own connection; 503/429 retried with the same body, see bench.channels);
the clock runs from the first post until all of them have reached ``confirmed`` in
order-svc (its transitions, read from its database every 0.2 s). Along the way: webhook ack
latency per post, and post->confirmed latency for ~100 sampled orders (the ``confirmed``
entry of the order's history minus the client's send time; same host, same clock).

Reference: the broker's raw produce+consume round trip for the same number of messages of
about an order event's size, with aiokafka and the services' producer settings, on the same
broker, in the same run.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import datetime

import asyncpg

from bench.channels import ClientPool, Post, post_all
from bench.harness import (
    BenchContext,
    Stalled,
    bounded_gather,
    service_dsn,
    wait_for_progress,
)
from bench.kafka import produce_consume_round_trip
from bench.oms import OmsClient, http_client, order_body
from bench.registry import scenario
from bench.report import Result
from bench.stackprobe import confirmed_count
from bench.stats import evenly_spaced, percentile, rate
from oms_devstack.stack import Stack

CHANNELS = ("web", "app", "live", "tmall")
WAREHOUSES = ["WH-SH", "WH-BJ"]
CLIENTS = 32
LATENCY_SAMPLE = 100
#: Roughly the size of an OrderReceived envelope on the wire.
MESSAGE_BYTES = 1024


def flow_sku(i: int) -> str:
    return f"FLOW-{i:03d}"


async def progress(stack: Stack) -> tuple[int, int]:
    """Orders that reached ``confirmed`` (the target; the workflow may move them on, e.g. to
    ``routed``), and all orders (a sign of life while none is confirmed yet)."""
    return await confirmed_count(stack)


async def confirm_latency_s(oms: OmsClient, post: Post) -> float | None:
    assert post.order_ref is not None
    order = await oms.order(post.order_ref)
    for entry in order["history"] if order else []:
        if entry["to_state"] == "confirmed":
            return datetime.fromisoformat(entry["at"]).timestamp() - post.sent_wall
    return None


@scenario(
    "flow",
    "paid orders/s from channel webhook to confirmed vs the broker's round trip",
    order=20,
)
async def run(ctx: BenchContext, result: Result) -> None:
    orders = ctx.scaled(full=2000, quick=60)
    sku_count = ctx.size(full=100, quick=20)
    secret = secrets.token_hex(16)
    stock_per_sku = orders  # never the limit here: this scenario measures the flow
    result.parameters = {
        "orders": orders,
        "channels": len(CHANNELS),
        "client_concurrency": CLIENTS,
        "skus": sku_count,
        "warehouses": len(WAREHOUSES),
        "latency_sample": LATENCY_SAMPLE,
        "reference_message_bytes": MESSAGE_BYTES,
        "services": "all five",
    }
    result.notes += [
        "orders/s = accepted orders / (last order confirmed - first post); the poll every "
        "0.2 s bounds its error.",
        "The reference is a single produce->consume hop; one order crosses the broker "
        "several times (OrderReceived, OrderPaid, StockReserved, ...) and PostgreSQL at "
        "every service, so the ratio shows how far the flow is from the bare transport.",
        "The benchmark client (HTTP posts, signing) runs on the same cores as the stack.",
    ]

    async with (
        ctx.stack(result) as stack,
        http_client(8) as http,
        ClientPool(CLIENTS) as pool,
    ):
        oms = OmsClient(stack, http)
        with result.phase("seed"):
            await oms.add_warehouses(WAREHOUSES)
            await oms.add_channels(list(CHANNELS), secret)
            await oms.add_skus(
                {flow_sku(i): dict.fromkeys(WAREHOUSES, stock_per_sku) for i in range(sku_count)}
            )

        with result.phase("reference"):
            round_trip = await produce_consume_round_trip(
                stack.kafka_bootstrap, orders, MESSAGE_BYTES
            )

        with result.phase("warm-up"):  # every consumer group formed, code paths hot
            warm = [Post(ch, order_body(flow_sku(0))) for ch in CHANNELS]
            await post_all(pool, stack.url("channel-gateway"), warm, secret)
            baseline = sum(1 for p in warm if p.accepted)
            await wait_for_progress(lambda: progress(stack), baseline)

        posts = [
            Post(CHANNELS[i % len(CHANNELS)], order_body(flow_sku(i % sku_count)))
            for i in range(orders)
        ]
        with result.phase("ours"):
            await post_all(pool, stack.url("channel-gateway"), posts, secret)
            accepted = [p for p in posts if p.accepted]
            try:
                (confirmed, _), done = await wait_for_progress(
                    lambda: progress(stack), baseline + len(accepted)
                )
            except Stalled as exc:  # report what was measured, and run the checks anyway
                result.error = f"Stalled: {exc}"
                (confirmed, _), done = await progress(stack), time.perf_counter()

        with result.phase("checks"):
            sample = evenly_spaced(list(range(len(accepted))), LATENCY_SAMPLE)
            latencies = [
                x
                for x in await bounded_gather(
                    [accepted[i] for i in sample], lambda p: confirm_latency_s(oms, p), 8
                )
                if x is not None
            ]
            await asyncio.sleep(0.5)  # anything created twice would show by now
            total_orders = await oms.count_orders() - baseline
            in_exception = await oms.count_orders("exception")
            conn = await asyncpg.connect(service_dsn(stack, "inventory-svc"))
            try:
                reserved = await conn.fetchval("SELECT coalesce(sum(reserved), 0) FROM stock")
                oversold = await conn.fetchval(
                    "SELECT coalesce(sum(greatest(reserved - on_hand, 0)), 0) FROM stock"
                )
            finally:
                await conn.close()

    first_post = min(p.sent for p in posts)
    last_ack = max(p.acked for p in posts)
    acks_ms = [p.ack_ms for p in accepted]
    result.measure(
        "orders_per_s",
        "orders/s, first post to last confirmed",
        rate(len(accepted), done - first_post),
        "/s",
        reference=round_trip.per_second,
        reference_label="broker produce+consume round trip (aiokafka)",
    )
    result.measure(
        "webhook_acks_per_s", "webhooks acked/s", rate(len(accepted), last_ack - first_post), "/s"
    )
    result.measure("ack_p50_ms", "webhook ack p50", percentile(acks_ms, 50), "ms")
    result.measure("ack_p99_ms", "webhook ack p99", percentile(acks_ms, 99), "ms")
    for pct in (50, 95, 99):
        value = percentile(latencies, pct)
        result.measure(
            f"confirm_p{pct}_ms",
            f"post -> confirmed p{pct}",
            None if value is None else value * 1000,
            "ms",
        )
    result.details |= {
        "accepted": len(accepted),
        "posts_not_accepted": {
            str(s): sum(1 for p in posts if p.status == s) for s in {p.status for p in posts}
        }
        if len(accepted) != len(posts)
        else {},
        "seconds_first_post_to_last_confirmed": done - first_post,
        "seconds_posting": last_ack - first_post,
        "confirmed_seen": confirmed - baseline,
        "latency_samples": len(latencies),
        "reference": vars(round_trip) | {"per_second": round_trip.per_second},
    }
    result.check("posts_refused", "posts not accepted (non-202)", len(posts) - len(accepted), 0)
    result.check(
        "lost",
        "lost orders (accepted, not in order-svc)",
        max(0, len(accepted) - total_orders),
        0,
    )
    result.check(
        "duplicated",
        "duplicated orders (more in order-svc than accepted)",
        max(0, total_orders - len(accepted)),
        0,
    )
    result.check("exceptions", "orders in exception", in_exception, 0)
    result.check(
        "reserved_matches",
        "inventory reserved units - confirmed orders",
        int(reserved) - (confirmed),
        0,
    )
    result.check("oversold", "oversold units", int(oversold), 0)
    result.check(
        "latency_sampled",
        "sampled orders without a confirmed time",
        len(sample) - len(latencies),
        0,
    )
