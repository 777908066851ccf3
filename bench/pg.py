"""The database's raw limit for reservations: the bare guarded UPDATE, nothing around it.

Same statement inventory-svc relies on (``on_hand - reserved >= n`` re-checked on the
committed row), one statement per transaction (autocommit), N connections in parallel, on a
``stock`` table shaped like the service's (same key and the same never-oversold CHECK).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg

STOCK_DDL = """
CREATE TABLE stock (
    sku text NOT NULL,
    warehouse text NOT NULL,
    on_hand integer NOT NULL DEFAULT 0,
    reserved integer NOT NULL DEFAULT 0,
    updated_at timestamptz DEFAULT now(),
    PRIMARY KEY (sku, warehouse),
    CONSTRAINT stock_never_oversold
        CHECK (on_hand >= 0 AND reserved >= 0 AND reserved <= on_hand)
)
"""

GUARDED_RESERVE = (
    "UPDATE stock SET reserved = reserved + 1 "
    "WHERE sku = $1 AND warehouse = $2 AND on_hand - reserved >= 1"
)


@dataclass
class RawRun:
    attempted: int
    reserved: int
    seconds: float
    connections: int
    #: Units reserved beyond on hand at the end (must be 0).
    oversold: int

    @property
    def per_second(self) -> float:
        return self.attempted / self.seconds


async def create_stock_table(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(STOCK_DDL)
    finally:
        await conn.close()


async def add_stock(dsn: str, stock: dict[str, int], warehouse: str) -> None:
    """Rows ``{sku: on_hand}`` in ``warehouse``, nothing reserved yet."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "stock",
            records=[(sku, warehouse, qty, 0) for sku, qty in stock.items()],
            columns=["sku", "warehouse", "on_hand", "reserved"],
        )
        await conn.execute("ANALYZE stock")
    finally:
        await conn.close()


async def guarded_reservations(
    dsn: str, requests: list[str], warehouse: str, connections: int
) -> RawRun:
    """One guarded UPDATE per request (a SKU each), ``connections`` at a time."""
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    assert pool is not None
    try:
        conns = [await pool.acquire() for _ in range(connections)]
        for conn in conns:  # the statement is prepared (and cached) before the clock starts
            await conn.execute(GUARDED_RESERVE, "", warehouse)
        it = iter(requests)
        reserved = 0

        async def worker(conn: asyncpg.Connection) -> None:
            nonlocal reserved
            await barrier.wait()
            for sku in it:
                if await conn.execute(GUARDED_RESERVE, sku, warehouse) == "UPDATE 1":
                    reserved += 1

        barrier = asyncio.Barrier(connections + 1)
        tasks = [asyncio.create_task(worker(c)) for c in conns]
        await barrier.wait()
        started = time.perf_counter()
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
        oversold = await conns[0].fetchval(
            "SELECT coalesce(sum(greatest(reserved - on_hand, 0)), 0) FROM stock"
        )
        total_reserved = await conns[0].fetchval(
            "SELECT coalesce(sum(reserved), 0) FROM stock WHERE sku = ANY($1::text[])",
            sorted(set(requests)),
        )
        for conn in conns:
            await pool.release(conn)
    finally:
        await pool.close()
    if total_reserved != reserved:
        raise RuntimeError(f"raw run counted {reserved} reservations, the table {total_reserved}")
    return RawRun(len(requests), reserved, seconds, connections, int(oversold))
