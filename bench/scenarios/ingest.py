"""ingest: how fast channel-gateway takes orders in, beside the plain HTTP limit.

Webhooks. N signed, paid orders of the ``generic`` format posted by C concurrent clients
(C keep-alive connections) to ``POST /webhooks/<channel>`` over 4 channels, each
answered only once the order and its OrderReceived event are committed. Figure: webhooks
accepted per second (first post to last answer) and ack latency p50/p99. Reference: the
same posts (same bodies, signed the same way, same client settings) to a trivial ASGI app
under the same uvicorn set-up on the same machine, answering 202 with an empty body.

Bulk import. One R-row CSV (one paid single-line order per row) posted to
``POST /imports/orders``. Figure: rows per second (request start to the full answer) and
the gateway's peak RSS while it runs. Reference: parsing the same CSV bytes with the
``csv`` module alone, in the benchmark process.

Only channel-gateway runs (with the broker and PostgreSQL): its outbox relay publishes the
events, nobody consumes them.
"""

from __future__ import annotations

import csv
import io
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from bench.channels import ClientPool, Post, post_all, send_order
from bench.echo_app import running_echo
from bench.harness import BenchContext
from bench.oms import OmsClient, expect, http_client, order_body
from bench.procstat import MIB, rss_bytes, sample_rss
from bench.rawhttp import RawClient
from bench.registry import scenario
from bench.report import Result
from bench.stats import percentile, rate
from channel_gateway.imports import COLUMNS

CHANNELS = ("web", "app", "live", "tmall")
#: Concurrent channel clients, each with its own connection.
CLIENTS = 64
#: Posts before each measured run: every client's connection is open and warm.
WARMUP = 2 * CLIENTS
IMPORT_CHANNEL = "bulk"


@dataclass
class Timed:
    """Posts of one run: each answer's status and latency."""

    statuses: list[int]
    latencies_ms: list[float]
    seconds: float

    @property
    def ok(self) -> int:
        return sum(1 for s in self.statuses if s in (200, 202))

    @property
    def per_second(self) -> float | None:
        return rate(self.ok, self.seconds)


async def post_timed(pool: ClientPool, base: str, posts: list[Post], secret: str) -> Timed:
    """Post every body to ``<base>/webhooks/<channel>``, signed at send time, timed."""
    statuses: list[int] = []
    latencies: list[float] = []

    async def one(http: RawClient, post: Post) -> None:
        started = time.perf_counter()
        try:
            response = await send_order(http, base, post.channel, post.raw, secret)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        latencies.append((time.perf_counter() - started) * 1000)
        statuses.append(status)

    started = time.perf_counter()
    await pool.run(posts, one)
    return Timed(statuses, latencies, time.perf_counter() - started)


def import_rows(count: int, skus: int = 100) -> list[dict[str, Any]]:
    """``count`` valid rows: unique channel order ids, paid, one line each."""
    run = secrets.token_hex(3)
    return [
        {
            "channel_order_id": f"IMP-{run}-{i:06d}",
            "customer_id": f"cust-{i % 5000}",
            "customer_name": "Wang Fang",
            "phone": "+8613800000002",
            "email": "wang.fang@example.com",
            "sku": f"IMP-SKU-{i % skus:03d}",
            "qty": 1 + i % 3,
            "unit_price": "12.50",
            "currency": "CNY",
            "paid": "true",
            "paid_at": "2026-11-11T00:00:00+00:00",
            "region": "CN-BJ",
            "city": "Beijing",
            "address": "8 Import Street",
            "postal_code": "100000",
            "notes": "",
            "priority": "normal",
            "delivery_requirements": "",
        }
        for i in range(count)
    ]


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def parse_with_csv_module(raw: bytes) -> tuple[int, float]:
    """The reference: rows parsed (as dicts) and the seconds it took."""
    started = time.perf_counter()
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="")
    count = sum(1 for _ in csv.DictReader(text))
    return count, time.perf_counter() - started


@scenario(
    "ingest",
    "webhooks/s and CSV import rows/s at channel-gateway vs an empty 202 and the csv module",
    order=30,
)
async def run(ctx: BenchContext, result: Result) -> None:
    webhooks = ctx.scaled(full=20_000, quick=300)
    rows = ctx.scaled(full=50_000, quick=2_000)
    secret = secrets.token_hex(16)
    result.parameters = {
        "webhooks": webhooks,
        "channels": len(CHANNELS),
        "client_concurrency": CLIENTS,
        "import_rows": rows,
        "services": "channel-gateway only",
    }
    result.notes += [
        "Webhooks/s = answers 200/202 / (last answer - first post); latency is per request, "
        "client side (signing included, the same work for the reference).",
        "The reference app reads the whole body and answers 202 with no body, under the same "
        "uvicorn.run arguments as the services: the ratio is the share of the bare HTTP "
        "server's capacity the gateway keeps while verifying, validating and committing.",
        "Import rows/s = rows / (request start - complete answer, every row answered); peak "
        "RSS is the kernel's high-water mark of the gateway process (reset before the "
        "import) or the largest 0.1 s sample where the reset is not permitted.",
        "The benchmark client runs on the same cores as the gateway and PostgreSQL.",
    ]
    warm = [Post(CHANNELS[i % len(CHANNELS)], order_body("ING-WARM")) for i in range(WARMUP)]
    posts = [
        Post(CHANNELS[i % len(CHANNELS)], order_body(f"ING-{i % 100:03d}")) for i in range(webhooks)
    ]
    raw_csv = as_csv(import_rows(rows))
    result.details["import_csv_bytes"] = len(raw_csv)

    async with (
        ctx.stack(result, services=["channel-gateway"]) as stack,
        http_client(4) as http,
        ClientPool(CLIENTS) as pool,
    ):
        oms = OmsClient(stack, http)
        with result.phase("seed"):
            await oms.add_channels([*CHANNELS, IMPORT_CHANNEL], secret)
        gateway = stack.url("channel-gateway")

        with result.phase("reference: empty 202"):
            log = ctx.log_dir(result.scenario) / "echo.log"
            async with running_echo(log, ctx.root) as echo_url:
                await post_timed(pool, echo_url, warm, secret)
                reference = await post_timed(pool, echo_url, posts, secret)

        with result.phase("ours: webhooks"):
            await post_all(pool, gateway, warm, secret)
            ours = await post_timed(pool, gateway, posts, secret)

        with result.phase("reference: csv module"):
            parsed, parse_s = parse_with_csv_module(raw_csv)

        pid = stack.pid("channel-gateway")
        assert pid is not None
        rss_before = rss_bytes(pid)
        with result.phase("ours: import"):
            async with sample_rss({"gateway": pid}) as memory:
                started = time.perf_counter()
                response = await http.post(
                    f"{gateway}/imports/orders",
                    params={"channel": IMPORT_CHANNEL},
                    content=raw_csv,
                    headers={"Content-Type": "text/csv", "X-Operator": "bench"},
                    timeout=httpx.Timeout(1800),
                )
                import_s = time.perf_counter() - started
        answer = expect(response, 200).json()

    result.measure(
        "webhooks_per_s",
        "webhooks accepted/s",
        ours.per_second,
        "/s",
        reference=reference.per_second,
        reference_label="same uvicorn, empty 202",
    )
    for pct in (50, 99):
        result.measure(
            f"ack_p{pct}_ms",
            f"webhook ack p{pct}",
            percentile(ours.latencies_ms, pct),
            "ms",
            reference=percentile(reference.latencies_ms, pct),
            reference_label="same uvicorn, empty 202",
        )
    result.measure(
        "import_rows_per_s",
        f"CSV import rows/s ({rows:,} rows)",
        rate(rows, import_s),
        "/s",
        reference=rate(parsed, parse_s),
        reference_label="csv.DictReader alone",
    )
    peak = memory.peak("gateway")
    result.measure(
        "import_peak_rss_mib",
        "gateway peak RSS during the import",
        None if peak is None else peak / MIB,
        "MiB",
    )
    result.details |= {
        "webhook_statuses": dict(Counter(map(str, ours.statuses))),
        "reference_statuses": dict(Counter(map(str, reference.statuses))),
        "seconds_webhooks": ours.seconds,
        "seconds_reference": reference.seconds,
        "seconds_import": import_s,
        "seconds_csv_parse": parse_s,
        "gateway_rss_before_import_mib": None if rss_before is None else rss_before / MIB,
        "peak_rss_source": "VmHWM (reset)" if memory.reset_ok else "0.1 s samples",
        "import_answer": {k: answer.get(k) for k in ("accepted", "duplicate", "rejected")},
    }
    result.check("webhooks_refused", "webhooks not accepted", webhooks - ours.ok, 0)
    result.check(
        "reference_refused", "reference posts not answered 202", webhooks - reference.ok, 0
    )
    result.check("import_accepted", "import rows not accepted", rows - int(answer["accepted"]), 0)
    result.check("import_answers", "import rows without an answer", rows - len(answer["rows"]), 0)
    result.check("csv_rows_parsed", "reference: rows parsed - rows", parsed - rows, 0)
