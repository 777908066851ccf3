"""Looking inside a running stack's databases and processes at the end of a scenario.

Read-only SQL on the services' own databases (never through their APIs, so the checks
cost the stack nothing while it works) and the services' process ids for memory figures.

"Confirmed" means the order has passed through ``confirmed`` (its transition exists):
the workflow rules may move a confirmed order on at once (to ``routed`` by default), so
its current state is not the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

import asyncpg

from bench.cpustat import CpuMeter, postgres_backends
from bench.harness import service_dsn
from oms_devstack.stack import Stack


def service_pids(stack: Stack) -> dict[str, int]:
    """Pid of every running service of the stack."""
    return {name: pid for name in stack.names if (pid := stack.pid(name)) is not None}


def stack_cpu_meter(stack: Stack) -> CpuMeter:
    """A CPU meter over every service, the PostgreSQL backends of the stack's databases,
    its private broker (when it runs one) and this benchmark process (the client)."""
    databases = {stack.db_name(name) for name in stack.names}
    groups: dict[str, Callable[[], Iterable[int]]] = {
        name: _constant([pid]) for name, pid in service_pids(stack).items()
    }
    groups["postgres"] = lambda: postgres_backends(databases)
    broker = stack.broker.process if stack.broker is not None else None
    if broker is not None:
        groups["broker"] = _constant([broker.pid])
    groups["bench client"] = _constant([os.getpid()])
    return CpuMeter(groups)


def _constant(pids: list[int]) -> Callable[[], Iterable[int]]:
    return lambda: pids


#: States only reachable through ``confirmed``: such an order was confirmed, whatever
#: state the workflow moved it to.
_AFTER_CONFIRMED = ("confirmed", "routed", "picking", "shipped", "delivered")
#: States that an order may reach with or without having been confirmed: only these few
#: orders look at their history. (A correlated look-up for every order cost PostgreSQL
#: 200-280 ms a poll at 10,000 orders, a tenth of the machine while the benchmark watched.)
_LEFT_THE_FLOW = ("cancelled", "refunded", "exception")


async def _counts(stack: Stack, with_exceptions: bool) -> tuple[int, int, int]:
    """(orders in a state after confirmed, plus those in exception when
    ``with_exceptions``; orders that left the flow; all orders)."""
    conn = await asyncpg.connect(service_dsn(stack, "order-svc"))
    try:
        # One grouping pass, the states sorted here. It still reads every order version
        # the day left behind (each state change is a new row version until vacuum):
        # 50-70 ms at 50,000 orders, so a long run polls seldom (see its caller).
        by_state = {
            r["state"]: int(r["n"])
            for r in await conn.fetch("SELECT state, count(*) AS n FROM orders GROUP BY state")
        }
        done = sum(n for state, n in by_state.items() if state in _AFTER_CONFIRMED)
        if with_exceptions:
            done += by_state.get("exception", 0)
        left_flow = sum(n for state, n in by_state.items() if state in _LEFT_THE_FLOW)
        total = sum(by_state.values())
        if left_flow:
            done += int(
                await conn.fetchval(
                    "SELECT count(DISTINCT t.order_id) FROM order_transitions t"
                    " JOIN orders o ON o.id = t.order_id"
                    " WHERE t.to_state = 'confirmed' AND o.state = ANY($1::text[])",
                    [s for s in _LEFT_THE_FLOW if not (with_exceptions and s == "exception")],
                )
            )
    finally:
        await conn.close()
    return done, left_flow, total


async def order_progress(stack: Stack) -> tuple[int, int]:
    """(settled: confirmed or in exception, all orders) in order-svc right now."""
    settled, _, total = await _counts(stack, with_exceptions=True)
    return settled, total


async def confirmed_count(stack: Stack) -> tuple[int, int]:
    """(confirmed, all orders) in order-svc right now."""
    confirmed, _, total = await _counts(stack, with_exceptions=False)
    return confirmed, total


async def orders_by_id(stack: Stack, ids: Iterable[str]) -> dict[str, asyncpg.Record]:
    """id -> (channel, channel_order_id, state, exception_reason, confirmed_at) of ``ids``.

    ``confirmed_at`` is the time of the ``confirmed`` transition (None: never confirmed).
    """
    conn = await asyncpg.connect(service_dsn(stack, "order-svc"))
    try:
        rows = await conn.fetch(
            "SELECT o.id::text AS id, o.channel, o.channel_order_id, o.state, "
            "o.exception_reason, "
            "(SELECT min(t.at) FROM order_transitions t "
            " WHERE t.order_id = o.id AND t.to_state = 'confirmed') AS confirmed_at "
            "FROM orders o WHERE o.id = ANY($1::uuid[])",
            [uuid.UUID(i) for i in ids],
        )
    finally:
        await conn.close()
    return {r["id"]: r for r in rows}


async def duplicate_channel_orders(stack: Stack) -> int:
    """Orders beyond the first for any (channel, channel order id) in order-svc."""
    conn = await asyncpg.connect(service_dsn(stack, "order-svc"))
    try:
        value = await conn.fetchval(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM orders "
            "GROUP BY channel, channel_order_id HAVING count(*) > 1) d"
        )
    finally:
        await conn.close()
    return int(value)


async def events_by_type(stack: Stack) -> dict[str, int]:
    """Events each service wrote to its outbox during the run, by type (every service's
    outbox: which events a day costs, and which to coalesce next)."""
    counts: dict[str, int] = {}
    for name in stack.names:
        conn = await asyncpg.connect(service_dsn(stack, name))
        try:
            rows = await conn.fetch("SELECT event_type, count(*) FROM outbox GROUP BY 1")
        finally:
            await conn.close()
        for event_type, n in rows:
            counts[event_type] = counts.get(event_type, 0) + int(n)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


async def stock_totals(stack: Stack, skus: list[str] | None = None) -> tuple[int, int, int]:
    """(on hand, reserved, oversold units) in inventory-svc, for ``skus`` or all."""
    conn = await asyncpg.connect(service_dsn(stack, "inventory-svc"))
    try:
        row = await conn.fetchrow(
            "SELECT coalesce(sum(on_hand), 0) AS on_hand, coalesce(sum(reserved), 0) AS reserved,"
            " coalesce(sum(greatest(reserved - on_hand, 0)), 0) AS oversold FROM stock"
            " WHERE $1::text[] IS NULL OR sku = ANY($1::text[])",
            skus,
        )
    finally:
        await conn.close()
    assert row is not None
    return int(row["on_hand"]), int(row["reserved"]), int(row["oversold"])


def seconds_between(wall_start: float, at: datetime | None) -> float | None:
    return None if at is None else at.timestamp() - wall_start
