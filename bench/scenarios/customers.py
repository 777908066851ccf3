"""customers: identity resolutions per second with 100,000 customers loaded.

Load: N customers, each with one ``web`` identity, written with COPY straight into
customer-svc's own tables (``customers``, ``identities``) after its migrations ran; the
service's CSV import resolves row by row (and takes at most 10,000 rows), so it would
measure the import, not the resolution.

Ours: M resolutions through the service's real path, ``POST /customers/resolve`` (the
same ``resolve_customer`` the OrderCreated handler runs, in a unit of work that commits),
by C concurrent clients. Half are a known channel identity (``web`` + platform user id:
one indexed lookup), half a NEW identity on the ``app`` channel whose phone, written in
national format, belongs to a loaded customer (E.164 normalization, contact lock, contact
match over customers and identities, then the identity is linked: a write).

Reference: the raw indexed SELECT of the same lookups (identity by its key; customer by
E.164 phone) with asyncpg, C connections, prepared statements, on the service's database,
in the same run.

History: B of the loaded customers are given 10,000 past orders each (COPY into the
service's order history and running totals, as the service keeps them). Then K
``OrderCreated`` (the promotion day's path: resolution, totals, tag rules, in batches)
from those busy buyers, round robin, are published to the broker at once, and the time
until customer-svc has recorded every one is measured; then K from K new buyers the same
way. Figures: orders resolved per second in each case, and the busy buyer's cost per order
beside the new buyer's (the target: at most 2x; a buyer's history must not be re-read).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx

from bench.channels import ClientPool
from bench.harness import BenchContext, service_dsn, wait_for_progress
from bench.kafka import publish
from bench.people import person_name, postal_code, street_line
from bench.profiler import Profiler
from bench.rawhttp import RawClient
from bench.registry import scenario
from bench.report import Result
from bench.stackprobe import service_pids
from bench.stats import percentile, rate
from oms_contracts import Envelope, make_envelope
from oms_contracts.events import Address, CustomerIdentity, OrderCreated, OrderLine
from oms_contracts.topics import Topic

CLIENTS = 16
WARMUP = 40
BY_IDENTITY = "SELECT customer_id FROM identities WHERE channel = $1 AND platform_user_id = $2"
BY_PHONE = "SELECT id FROM customers WHERE phone_e164 = $1 AND merged_into IS NULL"


def phone_e164(i: int) -> str:
    """A valid, distinct Chinese mobile number per customer."""
    return f"+86138{i:08d}"


def phone_national(i: int) -> str:
    """The same number as a buyer types it: no country code, spaced."""
    digits = f"138{i:08d}"
    return f"{digits[:3]} {digits[3:7]} {digits[7:]}"


@dataclass
class Lookup:
    customer: int
    by: str  # "platform_id" | "phone"
    platform_user_id: str
    status: int = 0
    answer: str | None = None
    matched_by: str | None = None
    ms: float = 0.0

    def body(self) -> dict[str, str]:
        if self.by == "platform_id":
            return {"channel": "web", "platform_user_id": self.platform_user_id}
        return {
            "channel": "app",
            "platform_user_id": self.platform_user_id,
            "name": f"Customer {self.customer}",
            "phone": phone_national(self.customer),
        }


@dataclass
class Loaded:
    ids: list[uuid.UUID]
    seconds: float


@dataclass
class RawRun:
    seconds: float
    found: int
    latencies_ms: list[float] = field(default_factory=list)


async def load_customers(dsn: str, count: int) -> Loaded:
    """``count`` customers with one ``web`` identity each, by COPY; then ANALYZE."""
    ids = [uuid.uuid4() for _ in range(count)]
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "customers",
            records=[
                (cid, f"Customer {i}", phone_e164(i), f"c{i}@example.com")
                for i, cid in enumerate(ids)
            ],
            columns=["id", "display_name", "phone_e164", "email_lower"],
        )
        await conn.copy_records_to_table(
            "identities",
            records=[
                ("web", f"u{i}", cid, f"Customer {i}", phone_e164(i), f"c{i}@example.com")
                for i, cid in enumerate(ids)
            ],
            columns=["channel", "platform_user_id", "customer_id", "name", "phone", "email"],
        )
        await conn.execute("ANALYZE customers; ANALYZE identities")
    finally:
        await conn.close()
    return Loaded(ids, time.perf_counter() - started)


def plan_lookups(customers: int, count: int, rng: random.Random) -> list[Lookup]:
    """Alternating known-identity and phone lookups, each on a different customer."""
    chosen = rng.sample(range(customers), count)
    return [
        Lookup(c, "platform_id", f"u{c}")
        if n % 2 == 0
        else Lookup(c, "phone", f"app-{uuid.uuid4().hex[:12]}")
        for n, c in enumerate(chosen)
    ]


async def raw_selects(dsn: str, lookups: list[Lookup], connections: int) -> RawRun:
    """The same lookups as bare prepared SELECTs on ``connections`` connections."""
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    assert pool is not None
    found = 0
    latencies: list[float] = []
    try:
        conns = [await pool.acquire() for _ in range(connections)]
        prepared = [(await c.prepare(BY_IDENTITY), await c.prepare(BY_PHONE)) for c in conns]
        it = iter(lookups)

        async def worker(k: int) -> None:
            nonlocal found
            by_identity, by_phone = prepared[k]
            for lk in it:
                t = time.perf_counter()
                if lk.by == "platform_id":
                    row = await by_identity.fetchval("web", lk.platform_user_id)
                else:
                    row = await by_phone.fetchval(phone_e164(lk.customer))
                latencies.append((time.perf_counter() - t) * 1000)
                found += row is not None

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(connections)))
        seconds = time.perf_counter() - started
        for c in conns:
            await pool.release(c)
    finally:
        await pool.close()
    return RawRun(seconds, found, latencies)


async def resolve_all(pool: ClientPool, base: str, lookups: list[Lookup]) -> float:
    """Every lookup through ``POST /customers/resolve``; the seconds it took."""

    async def one(http: RawClient, lk: Lookup) -> None:
        t = time.perf_counter()
        try:
            r = await http.post(f"{base}/customers/resolve", json=lk.body())
        except httpx.HTTPError:
            lk.ms = (time.perf_counter() - t) * 1000
            return
        lk.ms = (time.perf_counter() - t) * 1000
        lk.status = r.status_code
        if r.status_code in (200, 201):
            data = r.json()
            lk.answer, lk.matched_by = data["customer_id"], data["matched_by"]

    started = time.perf_counter()
    await pool.run(lookups, one)
    return time.perf_counter() - started


#: Past orders of each busy buyer.
HISTORY = 10_000


async def load_history(dsn: str, ids: list[uuid.UUID], orders_each: int) -> float:
    """``orders_each`` past orders for each customer of ``ids`` and the running totals
    that go with them, by COPY; the seconds it took."""
    started = time.perf_counter()
    first = datetime(2025, 1, 1, tzinfo=UTC)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "customer_orders",
            records=(
                (
                    uuid.uuid4(),
                    cid,
                    "web",
                    Decimal("100.00"),
                    "CNY",
                    1,
                    "[]",
                    "delivered",
                    first + timedelta(hours=n),
                )
                for cid in ids
                for n in range(orders_each)
            ),
            columns=[
                "order_id",
                "customer_id",
                "channel",
                "total",
                "currency",
                "item_count",
                "delivery_requirements",
                "status",
                "ordered_at",
            ],
        )
        await conn.copy_records_to_table(
            "customer_totals",
            records=[
                (
                    cid,
                    orders_each,
                    Decimal(100 * orders_each),
                    first + timedelta(hours=orders_each - 1),
                    f'{{"web": {orders_each}}}',
                    0,
                )
                for cid in ids
            ],
            columns=[
                "customer_id",
                "order_count",
                "lifetime_value",
                "last_order_at",
                "channels",
                "complaints",
            ],
        )
        await conn.execute("ANALYZE customer_orders; ANALYZE customer_totals")
    finally:
        await conn.close()
    return time.perf_counter() - started


def order_created(user: str, phone: str, b: int) -> Envelope:
    """A paid order's OrderCreated as order-svc publishes it, from person ``b``."""
    event = OrderCreated(
        order_id=uuid.uuid4(),
        channel="web",
        channel_order_id=f"H-{uuid.uuid4().hex[:12]}",
        customer=CustomerIdentity(platform_user_id=user, name=person_name(b), phone=phone),
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=1, unit_price=Decimal("100"))],
        currency="CNY",
        total=Decimal("100"),
        shipping_address=Address(
            region="CN-SH", city="Shanghai", line1=street_line(b), postal_code=postal_code(b)
        ),
        created_at=datetime.now(UTC),
    )
    return make_envelope(event, producer="order-svc")


async def resolve_through_the_broker(bootstrap: str, dsn: str, envelopes: list[Envelope]) -> float:
    """Publish ``envelopes`` at once; seconds until customer-svc resolved every order (its
    ``CustomerResolved`` rows in its outbox: a range read on the outbox's key, so watching
    costs the service's database next to nothing)."""
    conn = await asyncpg.connect(dsn)
    try:
        after = await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")

        async def resolved() -> tuple[int]:
            n = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE id > $1 AND event_type = 'CustomerResolved'",
                after,
            )
            return (int(n),)

        started = await publish(bootstrap, Topic.ORDERS.value, envelopes)
        _, done = await wait_for_progress(resolved, len(envelopes), interval_s=0.1, stall_s=60)
    finally:
        await conn.close()
    return done - started


@scenario(
    "customers",
    "identity resolutions/s with 100,000 customers vs the raw indexed SELECT",
    order=40,
)
async def run(ctx: BenchContext, result: Result) -> None:
    customers = ctx.scaled(full=100_000, quick=30_000)
    resolutions = ctx.scaled(full=5_000, quick=200)
    busy_buyers = ctx.scaled(full=100, quick=5)
    history_orders = ctx.scaled(full=5_000, quick=500)
    rng = random.Random(20261111)
    lookups = plan_lookups(customers, resolutions + WARMUP, rng)
    warm, measured = lookups[:WARMUP], lookups[WARMUP:]
    result.parameters = {
        "customers_loaded": customers,
        "resolutions": len(measured),
        "mix": "1/2 known identity, 1/2 new identity matched by phone (national format)",
        "client_concurrency": CLIENTS,
        "raw_connections": CLIENTS,
        "services": "customer-svc only",
        "busy_buyers": busy_buyers,
        "past_orders_per_busy_buyer": HISTORY,
        "orders_created_per_case": history_orders,
    }
    result.notes += [
        "Customers are loaded with COPY into the service's tables (after its migrations); "
        "every resolution measured goes through POST /customers/resolve.",
        "A phone match links the new identity (a write, with the contact advisory lock); the "
        "reference only SELECTs the customer by E.164 phone, so it is the floor of the "
        "lookup, not of the whole resolution.",
        "The benchmark client runs on the same cores as the service and PostgreSQL.",
        "History: the busy buyers' OrderCreated come from known identities (one lookup);"
        " the new buyers' create a customer each (contact lock and match, link, address,"
        " merge-proposal search). Both are published at once and applied in the service's"
        " batches; the time runs from the first send to the last order recorded.",
    ]

    async with ctx.stack(result, services=["customer-svc"]) as stack, ClientPool(CLIENTS) as pool:
        dsn = service_dsn(stack, "customer-svc")
        with result.phase("load (COPY)"):
            loaded = await load_customers(dsn, customers)
        with result.phase("reference: raw SELECT"):
            raw = await raw_selects(dsn, measured, CLIENTS)
        base = stack.url("customer-svc")
        with result.phase("warm-up"):
            await resolve_all(pool, base, warm)
        profiles = ctx.results_dir / "profiles" / result.scenario
        http_profiler = Profiler(service_pids(stack), profiles / "http", enabled=ctx.profile)
        async with http_profiler:
            with result.phase("ours: resolve"):
                seconds = await resolve_all(pool, base, measured)
        conn = await asyncpg.connect(dsn)
        try:
            total_customers = await conn.fetchval("SELECT count(*) FROM customers")
            app_links = await conn.fetchval("SELECT count(*) FROM identities WHERE channel = 'app'")
        finally:
            await conn.close()
        busy = rng.sample(range(customers), busy_buyers)
        with result.phase("history: load"):
            history_load_s = await load_history(dsn, [loaded.ids[b] for b in busy], HISTORY)
        assert stack.kafka_bootstrap is not None
        busy_orders = [
            order_created(f"u{b}", phone_e164(b), b)
            for b in (busy[k % len(busy)] for k in range(history_orders))
        ]
        new_orders = [
            order_created(f"new-{k}", f"+86139{k:08d}", customers + k)
            for k in range(history_orders)
        ]
        with result.phase("history: busy buyers"):
            busy_s = await resolve_through_the_broker(stack.kafka_bootstrap, dsn, busy_orders)
        batch_profiler = Profiler(service_pids(stack), profiles / "new-buyers", enabled=ctx.profile)
        async with batch_profiler:
            with result.phase("history: new buyers"):
                new_s = await resolve_through_the_broker(stack.kafka_bootstrap, dsn, new_orders)
        if ctx.profile:
            for phase, profiler in (("http", http_profiler), ("new-buyers", batch_profiler)):
                result.details[f"profile_{phase}"] = profiler.details()
                (profiler.out_dir / "top.md").write_text(profiler.markdown())

    ok = [lk for lk in measured if lk.status in (200, 201)]
    wrong = [
        lk
        for lk in lookups
        if lk.answer is not None
        and (lk.answer != str(loaded.ids[lk.customer]) or lk.matched_by != lk.by)
    ]
    latencies = [lk.ms for lk in ok]
    result.measure(
        "resolutions_per_s",
        f"resolutions/s ({customers:,} customers)",
        rate(len(ok), seconds),
        "/s",
        reference=rate(len(measured), raw.seconds),
        reference_label=f"indexed SELECT, {CLIENTS} connections",
    )
    for pct in (50, 99):
        result.measure(
            f"resolve_p{pct}_ms",
            f"resolution latency p{pct}",
            percentile(latencies, pct),
            "ms",
            reference=percentile(raw.latencies_ms, pct),
            reference_label="indexed SELECT",
        )
    for by in ("platform_id", "phone"):
        part = [lk.ms for lk in ok if lk.by == by]
        result.measure(
            f"{by}_p50_ms", f"p50, by {by.replace('_', ' ')}", percentile(part, 50), "ms"
        )
    busy_ms, new_ms = busy_s * 1000 / history_orders, new_s * 1000 / history_orders
    result.measure(
        "orders_created_per_s_new_buyers",
        "OrderCreated resolved/s, new buyers (batched, via the broker)",
        rate(history_orders, new_s),
        "/s",
    )
    result.measure(
        "orders_created_per_s_busy_buyers",
        f"OrderCreated resolved/s, buyers with {HISTORY:,} past orders",
        rate(history_orders, busy_s),
        "/s",
    )
    result.measure(
        "busy_buyer_ms_per_order",
        f"time per order, buyer with {HISTORY:,} past orders (target <= 2x a new buyer)",
        busy_ms,
        "ms",
        reference=new_ms,
        reference_label="time per order, new buyer",
    )
    result.details |= {
        "history_load_seconds": history_load_s,
        "load_seconds": loaded.seconds,
        "load_rows_per_s": rate(2 * customers, loaded.seconds),
        "seconds_ours": seconds,
        "seconds_reference": raw.seconds,
        "statuses": {
            str(s): sum(1 for lk in measured if lk.status == s)
            for s in {lk.status for lk in measured}
        },
    }
    result.check("failed", "resolutions not answered 200/201", len(measured) - len(ok), 0)
    result.check("wrong", "resolved to the wrong customer or by the wrong rule", len(wrong), 0)
    result.check(
        "new_customers", "customers created (all lookups match)", total_customers - customers, 0
    )
    result.check(
        "phone_links",
        "app identities linked - phone lookups",
        app_links - sum(1 for lk in lookups if lk.by == "phone" and lk.answer is not None),
        0,
    )
    result.check("raw_found", "reference lookups without a row", len(measured) - raw.found, 0)
