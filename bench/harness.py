"""What every scenario gets: sizes for quick/full runs, a running stack, throwaway databases.

Stacks come from `oms_devstack.Stack.for_tests`: free ports, throwaway databases (dropped
afterwards) and, unless a broker is given, a private tansu broker. Service logs are kept
under ``bench/results/logs/<scenario>/`` for inspection.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from oms_devstack.dburl import with_database
from oms_devstack.specs import DEFAULT_SERVICES
from oms_devstack.stack import Stack

if TYPE_CHECKING:
    from bench.report import Result

T = TypeVar("T")

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
RESULTS_DIR = PACKAGE_DIR / "results"


class Stalled(Exception):
    """Progress stopped before the work was done (a hung service, lost messages)."""


#: The services that consume events (a replica shares its group's partitions).
CONSUMING_SERVICES = ("order-svc", "inventory-svc", "customer-svc", "notifier")


@dataclass
class BenchContext:
    quick: bool
    root: Path = REPO_ROOT
    results_dir: Path = RESULTS_DIR
    #: An external broker for the stacks (default: each stack runs its own tansu).
    kafka_bootstrap: str | None = None
    log_level: str = "INFO"
    #: Fraction of the full sizes that :meth:`scaled` gives in a full run (``--scale``).
    scale: float = 1.0
    #: Record every service with a sampling profiler during the burst (``--profile``).
    profile: bool = False
    #: Filled by scenarios with what they learn about the environment (server versions).
    environment: dict[str, Any] = field(default_factory=dict)

    def size(self, full: T, quick: T) -> T:
        """The parameter for this run's mode."""
        return quick if self.quick else full

    def scaled(self, full: int, quick: int) -> int:
        """A count: ``quick`` in a quick run, else ``full`` times ``--scale`` (at least 1)."""
        return quick if self.quick else max(1, round(full * self.scale))

    def log_dir(self, scenario: str) -> Path:
        path = self.results_dir / "logs" / scenario
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.asynccontextmanager
    async def stack(
        self, result: Result, services: Iterable[str] | None = None, *, replicas: int = 1
    ) -> AsyncIterator[Stack]:
        """A started stack (all five services, or only ``services``), stopped afterwards.

        ``replicas`` > 1 runs that many processes of every consuming service (same
        database, same consumer group, own port: the partitions are shared among them).
        Its databases are dropped at the end; start and stop are timed into ``result``.
        """
        wanted = set(services) if services is not None else None
        specs = [s for s in DEFAULT_SERVICES if wanted is None or s.name in wanted]
        if wanted is not None and len(specs) != len(wanted):
            known = ", ".join(s.name for s in DEFAULT_SERVICES)
            raise ValueError(f"unknown service in {sorted(wanted)}; known: {known}")
        specs += [
            replace(
                spec,
                name=f"{spec.name}-{n + 1}",
                url_env=f"{spec.url_env}_{n + 1}",
                port_env=None,
            )
            for n in range(1, replicas)
            for spec in list(specs)
            if spec.name in CONSUMING_SERVICES
        ]
        stack = Stack.for_tests(
            self.log_dir(result.scenario),
            root=self.root,
            services=specs,
            kafka_bootstrap=self.kafka_bootstrap,
            log_level=self.log_level,
        )
        with result.phase("stack start"):
            await stack.start()
        try:
            await self._note_environment(stack)
            yield stack
        finally:
            with result.phase("stack stop"):
                await stack.stop(drop_databases=True)

    async def _note_environment(self, stack: Stack) -> None:
        self.environment["broker"] = (
            "tansu (private)" if stack.broker_is_private else "external Kafka protocol broker"
        )
        conn = await asyncpg.connect(with_database(stack.database_url, "postgres"))
        try:
            self.environment["postgres"] = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()


def service_dsn(stack: Stack, service: str) -> str:
    """A DSN to a service's own database (for end-of-run invariant checks)."""
    return with_database(stack.database_url, stack.db_name(service))


@contextlib.asynccontextmanager
async def throwaway_database(server_url: str, prefix: str = "bench") -> AsyncIterator[str]:
    """A fresh, empty database on ``server_url``; its DSN. Dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(server_url, name)
    finally:
        admin = await asyncpg.connect(with_database(server_url, "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def wait_for_progress(
    probe: Callable[[], Awaitable[tuple[int, ...]]],
    target: int,
    *,
    interval_s: float = 0.2,
    stall_s: float = 60.0,
) -> tuple[tuple[int, ...], float]:
    """Poll ``probe`` until its first number reaches ``target``; the last value and when.

    The other numbers are activity signs (e.g. orders created while none is confirmed yet):
    :class:`Stalled` is raised only when no number has moved for ``stall_s`` seconds.
    """
    last_value: tuple[int, ...] = ()
    last_change = time.perf_counter()
    while True:
        value = await probe()
        now = time.perf_counter()
        if value[0] >= target:
            return value, now
        if value != last_value:
            last_value, last_change = value, now
        elif now - last_change > stall_s:
            raise Stalled(f"stuck at {value} (target {target}) for {stall_s:.0f}s")
        await asyncio.sleep(interval_s)


async def bounded_gather(
    items: Iterable[T], worker: Callable[[T], Awaitable[Any]], concurrency: int
) -> list[Any]:
    """Run ``worker`` over ``items`` with at most ``concurrency`` in flight, results in order."""
    indexed = list(enumerate(items))
    results: list[Any] = [None] * len(indexed)
    it = iter(indexed)

    async def loop() -> None:
        for i, item in it:
            results[i] = await worker(item)

    await asyncio.gather(*(loop() for _ in range(max(1, min(concurrency, len(indexed))))))
    return results
