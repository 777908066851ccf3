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
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx

from bench.channels import ClientPool
from bench.harness import BenchContext, service_dsn
from bench.rawhttp import RawClient
from bench.registry import scenario
from bench.report import Result
from bench.stats import percentile, rate

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


@scenario(
    "customers",
    "identity resolutions/s with 100,000 customers vs the raw indexed SELECT",
    order=40,
)
async def run(ctx: BenchContext, result: Result) -> None:
    customers = ctx.scaled(full=100_000, quick=30_000)
    resolutions = ctx.scaled(full=5_000, quick=200)
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
    }
    result.notes += [
        "Customers are loaded with COPY into the service's tables (after its migrations); "
        "every resolution measured goes through POST /customers/resolve.",
        "A phone match links the new identity (a write, with the contact advisory lock); the "
        "reference only SELECTs the customer by E.164 phone, so it is the floor of the "
        "lookup, not of the whole resolution.",
        "The benchmark client runs on the same cores as the service and PostgreSQL.",
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
        with result.phase("ours: resolve"):
            seconds = await resolve_all(pool, base, measured)
        conn = await asyncpg.connect(dsn)
        try:
            total_customers = await conn.fetchval("SELECT count(*) FROM customers")
            app_links = await conn.fetchval("SELECT count(*) FROM identities WHERE channel = 'app'")
        finally:
            await conn.close()

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
    result.details |= {
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
