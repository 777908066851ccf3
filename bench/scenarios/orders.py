"""orders: orders per second from OrderReceived to confirmed, and the latency of each.

Ours: N OrderReceived events (paid, one line, the gateway's own mapping of a ``generic``
order) published to ``oms.channel.orders`` at once, as the gateway's outbox relay would on
a promotion day, for a stack of order-svc, inventory-svc and customer-svc. The clock runs
from the first publish to the last OrderConfirmed seen on ``oms.orders``; an order's
latency is from the broker's acknowledgement of its OrderReceived to its OrderConfirmed
on the topic (so it includes the queue in front of it: all N arrive together).

Reference: the broker's produce+consume round trip of N messages of the same size (an
OrderReceived envelope), with the services' producer settings, on the same broker, in the
same run.

The seed's target is 50,000 orders (``--scale`` shrinks it; ``--quick`` runs 50).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from bench.harness import BenchContext, Stalled, service_dsn
from bench.kafka import EventWatcher, produce_consume_round_trip, producer_settings
from bench.oms import OmsClient, http_client, order_body
from bench.registry import scenario
from bench.report import Result
from bench.stats import percentile, rate
from channel_gateway.domain.canonical import CanonicalOrder
from oms_contracts import Envelope, make_envelope, topic_for
from oms_contracts.events import OrderConfirmed, OrderReceived
from oms_messaging.kafka import create_producer

CHANNELS = ("web", "app", "live", "tmall")
WAREHOUSES = ["WH-SH", "WH-BJ"]
WARMUP = 20
SERVICES = ["order-svc", "inventory-svc", "customer-svc"]


def received(channel: str, sku: str) -> Envelope:
    """An OrderReceived envelope exactly as the gateway builds it from a channel's order."""
    order = CanonicalOrder.model_validate_json(order_body(sku))
    event = order.to_event(channel=channel, order_id=uuid.uuid4(), received_at=datetime.now(UTC))
    return make_envelope(event, producer="channel-gateway")


async def publish_timed(
    bootstrap: str, envelopes: list[Envelope]
) -> tuple[float, dict[str, float]]:
    """Publish as the outbox relay does; first send time and each order's broker ack time."""
    topic = topic_for(OrderReceived.event_type)
    messages = [
        (str(e.payload["order_id"]), e.model_dump_json().encode(), e.key.encode(), e.event_type)
        for e in envelopes
    ]
    acked: dict[str, float] = {}
    producer = create_producer(producer_settings(bootstrap, "bench-orders"))
    await producer.start()
    try:
        await producer.partitions_for(topic)
        started = time.perf_counter()
        futures = []
        for order_id, value, key, event_type in messages:
            future = await producer.send(
                topic, value=value, key=key, headers=[("event_type", event_type.encode())]
            )
            future.add_done_callback(
                lambda _f, k=order_id: acked.__setitem__(k, time.perf_counter())
            )
            futures.append(future)
        await asyncio.gather(*futures)
        return started, acked
    finally:
        await producer.stop()


@dataclass
class Confirmations:
    last: float
    confirmed: dict[str, float]


def confirmations(watcher: EventWatcher, ids: set[str]) -> dict[str, float]:
    """Order id -> arrival time of its first OrderConfirmed, for the ids confirmed so far."""
    kind = OrderConfirmed.event_type
    found: dict[str, float] = {}
    for k in ids:
        at = next((a.at for a in watcher.seen.get(k, ()) if a.event_type == kind), None)
        if at is not None:
            found[k] = at
    return found


def duplicate_confirmations(watcher: EventWatcher, ids: set[str]) -> int:
    """OrderConfirmed events beyond the first per order (a re-applied event would add one)."""
    kind = OrderConfirmed.event_type
    counts = (sum(1 for a in watcher.seen.get(k, ()) if a.event_type == kind) for k in ids)
    return sum(max(0, n - 1) for n in counts)


async def wait_confirmed(
    watcher: EventWatcher, ids: set[str], *, stall_s: float = 60.0
) -> Confirmations:
    """Until every order has an OrderConfirmed on the topic (Stalled if progress stops)."""
    last_activity, last_change = -1, time.perf_counter()
    while True:
        confirmed = confirmations(watcher, ids)
        if len(confirmed) == len(ids):
            return Confirmations(max(confirmed.values()), confirmed)
        activity = sum(len(watcher.seen.get(k, ())) for k in ids)
        if activity != last_activity:
            last_activity, last_change = activity, time.perf_counter()
        elif time.perf_counter() - last_change > stall_s:
            raise Stalled(f"{len(ids) - len(confirmed)} of {len(ids)} orders not confirmed")
        await asyncio.sleep(0.5)


@scenario(
    "orders",
    "orders/s from OrderReceived to confirmed, with latency, vs the broker's round trip",
    order=50,
)
async def run(ctx: BenchContext, result: Result) -> None:
    orders = ctx.scaled(full=50_000, quick=50)
    sku_count = ctx.size(full=200, quick=20)
    per_sku = -(-orders // sku_count) + WARMUP  # stock never the limit here
    result.parameters = {
        "orders": orders,
        "channels": len(CHANNELS),
        "skus": sku_count,
        "stock_per_sku": per_sku,
        "services": ", ".join(SERVICES),
    }
    result.notes += [
        "All orders are published at once (a burst), so latency percentiles include the "
        "wait in the queue; orders/s is the rate at which the stack drains it.",
        "The reference is one produce->consume hop of the same number of messages of an "
        "OrderReceived's size; an order crosses the broker several times (OrderReceived, "
        "OrderCreated, OrderPaid, StockReserved, OrderConfirmed, ...) and PostgreSQL at "
        "each service.",
    ]
    envelopes = [
        received(CHANNELS[i % len(CHANNELS)], f"ORD-{i % sku_count:03d}") for i in range(orders)
    ]
    warm = [received("web", "ORD-000") for _ in range(WARMUP)]
    message_bytes = len(envelopes[0].model_dump_json().encode())
    result.parameters["message_bytes"] = message_bytes

    async with ctx.stack(result, services=SERVICES) as stack:
        with result.phase("seed"):
            async with http_client() as http:
                oms = OmsClient(stack, http)
                await oms.add_warehouses(WAREHOUSES)
                await oms.add_skus(
                    {f"ORD-{i:03d}": {WAREHOUSES[i % 2]: per_sku} for i in range(sku_count)}
                )
        with result.phase("reference"):
            round_trip = await produce_consume_round_trip(
                stack.kafka_bootstrap, orders, message_bytes
            )
        async with EventWatcher(stack.kafka_bootstrap, "oms.orders") as watcher:
            with result.phase("warm-up"):
                await publish_timed(stack.kafka_bootstrap, warm)
                await wait_confirmed(watcher, {str(e.payload["order_id"]) for e in warm})
            ids = {str(e.payload["order_id"]) for e in envelopes}
            with result.phase("ours"):
                started, acked = await publish_timed(stack.kafka_bootstrap, envelopes)
                try:
                    done = await wait_confirmed(watcher, ids)
                except Stalled as exc:
                    result.error = f"Stalled: {exc}"
                    done = None
            await asyncio.sleep(1.0)  # a second confirmation of an order would show by now
            duplicates = duplicate_confirmations(watcher, ids)
        with result.phase("checks"):
            orders_db = await asyncpg.connect(service_dsn(stack, "order-svc"))
            inventory_db = await asyncpg.connect(service_dsn(stack, "inventory-svc"))
            try:
                states = dict(
                    await orders_db.fetch(
                        "SELECT state, count(*) FROM orders WHERE id = ANY($1::uuid[]) "
                        "GROUP BY state",
                        list(ids),
                    )
                )
                # Passed through ``confirmed`` (the workflow may have moved it on, e.g. routed).
                confirmed_in_db = await orders_db.fetchval(
                    "SELECT count(DISTINCT order_id) FROM order_transitions "
                    "WHERE order_id = ANY($1::uuid[]) AND to_state = 'confirmed'",
                    list(ids),
                )
                oversold = await inventory_db.fetchval(
                    "SELECT coalesce(sum(greatest(reserved - on_hand, 0)), 0) FROM stock"
                )
            finally:
                await orders_db.close()
                await inventory_db.close()

    confirmed = done.confirmed if done else {}
    latencies = [(at - acked[k]) * 1000 for k, at in confirmed.items() if k in acked]
    result.measure(
        "orders_per_s",
        "orders/s, OrderReceived to confirmed",
        rate(len(confirmed), done.last - started) if done else None,
        "/s",
        reference=round_trip.per_second,
        reference_label="broker produce+consume round trip",
    )
    for pct in (50, 95, 99):
        result.measure(
            f"confirm_p{pct}_ms",
            f"OrderReceived -> confirmed p{pct}",
            percentile(latencies, pct),
            "ms",
        )
    in_db = sum(states.values())
    result.details |= {
        "states": states,
        "seconds": (done.last - started) if done else None,
        "reference": vars(round_trip) | {"per_second": round_trip.per_second},
    }
    result.check("not_confirmed", "orders never confirmed", orders - int(confirmed_in_db), 0)
    result.check("lost", "orders missing in order-svc", orders - in_db, 0)
    result.check(
        "duplicate_confirmations", "OrderConfirmed published twice for an order", duplicates, 0
    )
    result.check("oversold", "oversold units", int(oversold), 0)
