"""One replica at a time: periodic work guarded by a PostgreSQL advisory lock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

#: Advisory-lock namespace of exclusive jobs (7300: migrations, 7301: outbox relay shards).
JOB_LOCK_NAMESPACE = 7302


async def run_exclusively(
    engine: AsyncEngine, name: str, work: Callable[[], Awaitable[None]]
) -> bool:
    """Run ``work`` unless another process runs the job ``name``; False when skipped.

    The lock is a session lock held on its own connection for the duration of the work,
    so it is released when the work ends, fails, or its process dies.
    """
    key = {"ns": JOB_LOCK_NAMESPACE, "name": name}
    async with engine.connect() as conn:
        got = await conn.scalar(text("SELECT pg_try_advisory_lock(:ns, hashtext(:name))"), key)
        await conn.commit()
        if not got:
            return False
        try:
            await work()
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:ns, hashtext(:name))"), key)
            await conn.commit()
    return True
