"""Prometheus metrics every service exposes on ``/metrics``.

- HTTP: request rate, errors and latency by route template (not raw path: bounded labels).
- Events: consumed per topic and outcome, produced per topic, consumer lag per partition,
  dead-lettered messages.
- Outbox: backlog and age of the oldest unpublished row (the relay's health in one line).
- Business gauges: per service, declared as SQL run at scrape time (e.g. orders per
  state), so a restart or a second replica never makes counters disagree with the data.
- Business counters: every committed event by type (``oms_events_emitted_total``), so
  rejections, SLA breaches and credit degradations are rates without extra code.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import FastAPI, Response
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from oms_contracts import Envelope
from oms_servicekit.asgi import ASGIApp, Receive, ResponseStatus, Scope, Send

if TYPE_CHECKING:
    from oms_servicekit.runtime import ServiceRuntime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HTTP_LATENCY = Histogram(
    "oms_http_request_duration_seconds",
    "HTTP requests by service, method, route template and status.",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


EVENTS_EMITTED = Counter(
    "oms_events_emitted",
    "Events committed to the outbox, by service and event type (business counters: "
    "StockRejected, SlaBreached, CreditCheckDegraded, OrderExceptionRaised, ...).",
    ["service", "event_type"],
)


CONSUMER_RESTARTS = Counter(
    "oms_consumer_restarts",
    "Consumer loops that died (an error their retries did not absorb) and were restarted.",
    ["service", "group"],
)


def count_consumer_restart(service: str, group: str) -> None:
    CONSUMER_RESTARTS.labels(service, group).inc()


def count_emitted(service: str, emitted: Sequence[Envelope]) -> None:
    """Count events a transaction committed (called after the commit, never before)."""
    for envelope in emitted:
        EVENTS_EMITTED.labels(service, envelope.event_type).inc()


@dataclass(frozen=True)
class ScrapeQuery:
    """A gauge computed by SQL at scrape time: each row is label values then the value."""

    name: str
    documentation: str
    sql: str
    labels: tuple[str, ...] = ()


@dataclass
class _Snapshot:
    outbox_backlog: float = 0.0
    outbox_oldest_age_s: float = 0.0
    outbox_parked: float = 0.0
    gauges: dict[str, list[tuple[tuple[str, ...], float]]] = field(default_factory=dict)


_OUTBOX_SQL = text(
    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)"
    " FROM outbox WHERE published_at IS NULL AND parked_at IS NULL"
)
#: ``id > :after`` (always 0) gives the statement a parameter: PostgreSQL keeps the first
#: plan of a statement without parameters for the life of the connection, and one made
#: while the outbox was empty reads the whole table on every scrape ever after.
_PARKED_SQL = text("SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL AND id > :after")


class RuntimeCollector(Collector):
    """Reads the runtime's consumer and relay statistics and the last database snapshot."""

    def __init__(
        self, runtime: ServiceRuntime, queries: list[ScrapeQuery], *, max_age_s: float = 0.0
    ) -> None:
        self._runtime = runtime
        self._queries = queries
        self._max_age_s = max_age_s
        self.snapshot = _Snapshot()
        self._read_at: float | None = None
        self._reading = asyncio.Lock()

    async def refresh(self) -> None:
        """Run the scrape-time SQL (outbox and business gauges) before collecting, unless
        the last snapshot is younger than ``max_age_s`` (the ``metrics_db_max_age_s``
        setting). Scrapes arriving together share one read."""
        async with self._reading:
            now = time.monotonic()
            if self._read_at is not None and now - self._read_at < self._max_age_s:
                return
            await self._read()
            self._read_at = time.monotonic()

    async def _read(self) -> None:
        snapshot = _Snapshot()
        async with self._runtime.engine.connect() as conn:
            backlog, age = (await conn.execute(_OUTBOX_SQL)).one()
            snapshot.outbox_backlog, snapshot.outbox_oldest_age_s = float(backlog), float(age)
            parked = (await conn.execute(_PARKED_SQL, {"after": 0})).scalar_one()
            snapshot.outbox_parked = float(parked)
            for query in self._queries:
                rows = (await conn.execute(text(query.sql))).all()
                snapshot.gauges[query.name] = [
                    (tuple(str(v) for v in row[:-1]), float(row[-1] or 0)) for row in rows
                ]
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        service = self._runtime.service_name
        consumed = CounterMetricFamily(
            "oms_events_consumed",
            "Events consumed by topic and outcome.",
            labels=["service", "group", "topic", "outcome"],
        )
        lag = GaugeMetricFamily(
            "oms_consumer_lag",
            "Messages behind the high watermark, per partition.",
            labels=["service", "group", "topic", "partition"],
        )
        in_flight = GaugeMetricFamily(
            "oms_consumer_in_flight",
            "Events inside the transaction being applied now (0 between batches).",
            labels=["service", "group"],
        )
        dead = CounterMetricFamily(
            "oms_events_dead_lettered",
            "Messages parked on a dead-letter topic.",
            labels=["service", "group"],
        )
        for runner in self._runtime.consumers:
            for (topic, outcome), n in runner.stats.outcomes.items():
                consumed.add_metric([service, runner.name, topic, outcome], n)
            for (topic, partition), behind in runner.lag().items():
                lag.add_metric([service, runner.name, topic, str(partition)], behind)
            dead.add_metric([service, runner.name], runner.stats.dead_lettered)
            in_flight.add_metric([service, runner.name], runner.stats.in_flight)
        produced = CounterMetricFamily(
            "oms_events_produced",
            "Events published from the outbox, by topic.",
            labels=["service", "topic"],
        )
        relay = self._runtime.relay
        if relay is not None:
            for topic, n in relay.published_by_topic.items():
                produced.add_metric([service, topic], n)
        backlog = GaugeMetricFamily(
            "oms_outbox_backlog", "Outbox rows not yet published.", labels=["service"]
        )
        backlog.add_metric([service], self.snapshot.outbox_backlog)
        age = GaugeMetricFamily(
            "oms_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row.",
            labels=["service"],
        )
        age.add_metric([service], self.snapshot.outbox_oldest_age_s)
        parked = GaugeMetricFamily(
            "oms_outbox_parked",
            "Outbox rows set aside because they can never be published (too large, refused"
            " by the broker): each needs an operator.",
            labels=["service"],
        )
        parked.add_metric([service], self.snapshot.outbox_parked)
        yield from (consumed, lag, in_flight, dead, produced, backlog, age, parked)
        for query in self._queries:
            gauge = GaugeMetricFamily(
                query.name, query.documentation, labels=["service", *query.labels]
            )
            for labels, value in self.snapshot.gauges.get(query.name, []):
                gauge.add_metric([service, *labels], value)
            yield gauge


class LatencyMiddleware:
    """Every request's duration into ``HTTP_LATENCY``, by route template and status."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = ResponseStatus(send)
        try:
            await self.app(scope, receive, status.send)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            HTTP_LATENCY.labels(self.service, scope["method"], template, str(status.code)).observe(
                time.perf_counter() - started
            )


def install_metrics(app: FastAPI, runtime: ServiceRuntime, queries: list[ScrapeQuery]) -> None:
    service = runtime.service_name
    collector = RuntimeCollector(runtime, queries, max_age_s=runtime.settings.metrics_db_max_age_s)
    own = CollectorRegistry(auto_describe=False)
    own.register(collector)

    app.add_middleware(LatencyMiddleware, service=service)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        # Without the database a scrape still reports process and HTTP metrics.
        with contextlib.suppress(Exception):
            await collector.refresh()
        body = generate_latest(REGISTRY) + generate_latest(own)
        return Response(body, media_type=CONTENT_TYPE)
