"""double11: a promotion day's paid orders through the whole stack, as fast as it takes them.

Ours: N paid orders (from N*0.8 buyers, one of whom places every tenth order) posted as
signed webhooks to channel-gateway from 4 channels by C
concurrent channel clients (each its own connection; a 503/429 answer is retried with the
same body after a back-off, as channels do), all five services running. Figures: orders/s
from the first post to the last order confirmed (order-svc's database, polled every
1 s; every 0.2 s below 5,000 orders), webhook ack p50/p99, post -> confirmed
p50/p95/p99 for every order (the
``confirmed`` transition's time minus the client's send time; same host, same clock),
and the peak RSS of each service while it runs.

Checks: oversold units, lost orders (acknowledged, missing in order-svc), duplicated
orders (two orders for one channel order, or orders nobody posted), all must be 0.

Reference: the broker's produce+consume round trip of N messages of an order event's
size, on the same broker, in the same run (the transport's limit; an order crosses it
several times).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from bench.channels import ClientPool, Post, post_all
from bench.harness import BenchContext, Stalled, wait_for_progress
from bench.kafka import produce_consume_round_trip
from bench.oms import OmsClient, consistency_check, http_client, order_body
from bench.people import person_name, postal_code, street_line
from bench.procstat import MIB, RssSampler
from bench.profiler import Profiler
from bench.registry import scenario
from bench.report import Result
from bench.stackprobe import (
    confirmed_count,
    duplicate_channel_orders,
    events_by_type,
    orders_by_id,
    seconds_between,
    service_pids,
    stack_cpu_meter,
    stock_totals,
)
from bench.stats import percentile, rate
from bench.timeline import LagSampler, per_second, svg, transition_times, write_picture

CHANNELS = ("web", "app", "live", "tmall")
WAREHOUSES = ["WH-SH", "WH-BJ"]
CLIENTS = 64
MESSAGE_BYTES = 1024


#: One buyer places every tenth order (5,000 of the full day's 50,000); the others are
#: spread over the rest of the buyers (40,000 in all at full size).
BUSIEST_EVERY = 10


def _poll_interval_s(orders: int) -> float:
    """How often the end of a run of ``orders`` is looked for."""
    if orders >= 20_000:
        return 2.0
    return 1.0 if orders >= 5_000 else 0.2


def sku(i: int) -> str:
    return f"D11-{i:04d}"


def buyer(i: int, buyers: int) -> dict[str, Any]:
    """Order ``i``'s buyer: the busiest one for every tenth order, else one of the others;
    each buyer with an account, a phone and an address of their own, as customer-svc
    matches them."""
    b = 0 if i % BUSIEST_EVERY == 0 else 1 + i % max(1, buyers - 1)
    phone = f"+86138{b:08d}"
    name = person_name(b)
    return {
        "customer": {
            "platform_user_id": f"d11-{b}",
            "name": name,
            "phone": phone,
            "email": f"buyer{b}@example.com",
        },
        "shipping_address": {
            "name": name,
            "phone": phone,
            "region": "CN-SH",
            "city": "Shanghai",
            "line1": street_line(b),
            "postal_code": postal_code(b),
        },
    }


@scenario(
    "double11",
    "50,000 paid orders through the gateway from 4 channels: orders/s, latency, memory",
    order=60,
)
async def run(ctx: BenchContext, result: Result) -> None:
    await promotion_day(ctx, result, replicas=1)


@scenario(
    "double11-scaleout",
    "the same promotion day with two replicas of every consuming service",
    order=61,
)
async def run_scaled_out(ctx: BenchContext, result: Result) -> None:
    await promotion_day(ctx, result, replicas=2)


async def promotion_day(ctx: BenchContext, result: Result, *, replicas: int) -> None:
    orders = ctx.scaled(full=50_000, quick=50)
    sku_count = ctx.size(full=500, quick=20)
    buyers = ctx.scaled(full=40_000, quick=40)
    per_sku = -(-orders // sku_count) + 10  # per warehouse: stock is never the limit
    secret = secrets.token_hex(16)
    result.parameters = {
        "orders": orders,
        "channels": len(CHANNELS),
        "client_concurrency": CLIENTS,
        "skus": sku_count,
        "buyers": buyers,
        "orders_of_the_busiest_buyer": len(range(0, orders, BUSIEST_EVERY)),
        "stock_per_sku_per_warehouse": per_sku,
        "services": "all five",
        "replicas_per_consuming_service": replicas,
    }
    result.notes += [
        "orders/s = accepted orders / (last confirmed - first post); post -> confirmed is "
        "measured for every order from order-svc's transition times.",
        "Peak RSS per service is the kernel's high-water mark, reset when posting starts "
        "(or the largest 0.1 s sample where a reset is not permitted).",
        "The benchmark client (signing, HTTP) runs on the same cores as the stack.",
        "CPU per order: user + system seconds of each process group from the first post to "
        "the last confirmation, divided by the accepted orders (2 cores give 2,000 ms a "
        "second, so 300 orders/s leaves 6.7 ms per order for everything).",
    ]
    warm = [Post(ch, order_body(sku(0))) for ch in CHANNELS]
    posts = [
        Post(CHANNELS[i % len(CHANNELS)], order_body(sku(i % sku_count), **buyer(i, buyers)))
        for i in range(orders)
    ]

    async with ctx.stack(result, replicas=replicas) as stack, ClientPool(CLIENTS) as pool:
        gateway = stack.url("channel-gateway")
        with result.phase("seed"):
            async with http_client() as http:
                oms = OmsClient(stack, http)
                await oms.add_warehouses(WAREHOUSES)
                await oms.add_channels(list(CHANNELS), secret)
                await oms.add_skus(
                    {sku(i): dict.fromkeys(WAREHOUSES, per_sku) for i in range(sku_count)}
                )
        with result.phase("reference"):
            round_trip = await produce_consume_round_trip(
                stack.kafka_bootstrap, orders, MESSAGE_BYTES
            )
        with result.phase("warm-up"):
            await post_all(pool, gateway, warm, secret)
            baseline = sum(1 for p in warm if p.accepted)
            await wait_for_progress(lambda: confirmed_count(stack), baseline, interval_s=0.5)

        profiler = Profiler(
            service_pids(stack), ctx.results_dir / "profiles" / result.scenario, enabled=ctx.profile
        )
        lags = LagSampler({name: stack.url(name) for name in stack.names})
        cpu = stack_cpu_meter(stack)
        async with RssSampler(service_pids(stack)) as memory, profiler, lags:
            with result.phase("ours"):
                cpu.start()
                stats = await post_all(pool, gateway, posts, secret)
                accepted = [p for p in posts if p.accepted]
                try:
                    _, done = await wait_for_progress(
                        lambda: confirmed_count(stack),
                        baseline + len(accepted),
                        # Each poll reads every order (50-70 ms at 50,000): a cost to
                        # a long run, where the figures come from the transition times
                        # anyway, and a precision a short one needs for its end.
                        interval_s=_poll_interval_s(len(accepted)),
                        stall_s=120,
                    )
                except Stalled as exc:
                    result.error = f"Stalled: {exc}"
                    done = time.perf_counter()
                cpu.stop()
        done_wall = time.time() - (time.perf_counter() - done)

        with result.phase("checks"):
            await asyncio.sleep(1.0)  # anything created twice would show by now
            refs = {p.order_ref for p in accepted if p.order_ref}
            found = await orders_by_id(stack, refs)
            _, total = await confirmed_count(stack)
            duplicates = await duplicate_channel_orders(stack)
            _, reserved, oversold = await stock_totals(stack)
            # order-svc's own check: every order's state agrees with the stock held.
            disagreements, disagreeing = await consistency_check(stack)
            stages = await transition_times(stack, ["reserved", "routed"])
            events = await events_by_type(stack)

    first_post = min(p.sent for p in posts)
    first_wall = min(p.sent_wall for p in posts)
    confirm_s = [
        s
        for p in accepted
        if p.order_ref in found
        and (s := seconds_between(p.sent_wall, found[p.order_ref]["confirmed_at"])) is not None
    ]
    acks = [p.ack_ms for p in accepted]
    result.measure(
        "orders_per_s",
        "orders/s, first post to last confirmed",
        rate(len(accepted), done - first_post),
        "/s",
        reference=round_trip.per_second,
        reference_label="broker produce+consume round trip",
    )
    result.measure(
        "webhooks_per_s",
        "webhooks acked/s",
        rate(len(accepted), max(p.acked for p in posts) - first_post),
        "/s",
    )
    for pct in (50, 99):
        result.measure(f"ack_p{pct}_ms", f"webhook ack p{pct}", percentile(acks, pct), "ms")
    for pct in (50, 95, 99):
        value = percentile(confirm_s, pct)
        result.measure(
            f"confirm_p{pct}_ms",
            f"post -> confirmed p{pct}",
            None if value is None else value * 1000,
            "ms",
        )
    for name in stack.names:
        peak = memory.peak(name)
        result.measure(
            f"peak_rss_{name.replace('-', '_')}",
            f"peak RSS {name}",
            None if peak is None else peak / MIB,
            "MiB",
        )
    for group, ms in cpu.per_item_ms(len(accepted)).items():
        result.measure(f"cpu_ms_per_order_{group}", f"CPU per order: {group}", ms, "ms")
    result.measure(
        "cpu_ms_per_order",
        "CPU per order: all of the above",
        sum(cpu.per_item_ms(len(accepted)).values()) or None,
        "ms",
    )
    confirmed = sum(1 for r in found.values() if r["confirmed_at"] is not None)
    result.details["events_per_order"] = {
        event_type: round(n / max(len(accepted), 1), 3) for event_type, n in events.items()
    }
    result.measure(
        "events_per_order",
        "events published per order (all services' outboxes, warm-up included)",
        sum(events.values()) / max(len(accepted), 1),
        "",
    )
    if ctx.profile:
        result.details["profile"] = profiler.details()
        (profiler.out_dir / "top.md").write_text(profiler.markdown())
    rates = {
        "accepted": per_second((p.sent_wall + p.acked - p.sent for p in accepted), first_wall),
        "reserved": per_second(stages.get("reserved", []), first_wall),
        "routed": per_second(stages.get("routed", []), first_wall),
    }
    lag_series = {
        name: [(at - first_wall, lag) for at, lag in points if at >= first_wall]
        for name, points in lags.samples.items()
        if any(lag for _, lag in points)
    }
    result.details["picture"] = write_picture(
        ctx.results_dir / f"{result.scenario}.svg",
        svg(rates, lag_series, f"{result.scenario}: {len(accepted)} orders, {replicas} replica(s)"),
    )
    result.details["per_second"] = {k: [y for _, y in v] for k, v in rates.items()}
    result.details |= {
        "accepted": len(accepted),
        "statuses": {str(k): v for k, v in stats.statuses.items()},
        "retries_503_429": stats.retries,
        "client_errors": dict(stats.errors),
        "seconds_first_post_to_last_confirmed": done - first_post,
        "wall_first_post_to_last_confirmed": done_wall - first_wall,
        "states": {
            s: sum(1 for r in found.values() if r["state"] == s)
            for s in {r["state"] for r in found.values()}
        },
        "peak_rss_source": "VmHWM (reset)" if memory.reset_ok else "0.1 s samples",
        "reference": vars(round_trip) | {"per_second": round_trip.per_second},
        "consistency_disagreements": disagreeing,
    }
    result.check("posts_refused", "posts not accepted", len(posts) - len(accepted), 0)
    result.check("lost", "lost orders (acknowledged, not in order-svc)", len(refs) - len(found), 0)
    result.check(
        "duplicated",
        "duplicated orders (same channel order twice, or not posted)",
        duplicates + max(0, total - baseline - len(refs)),
        0,
    )
    result.check("not_confirmed", "accepted orders not confirmed", len(refs) - confirmed, 0)
    result.check("oversold", "oversold units", oversold, 0)
    result.check(
        "reserved_matches", "reserved units - confirmed orders", reserved - confirmed - baseline, 0
    )
    result.check(
        "consistency", "orders disagreeing with their stock reservations", disagreements, 0
    )
