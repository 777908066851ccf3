"""Channel changes made by any replica evict this replica's cached configuration.

Triggers on ``channels`` and ``sku_map`` (migration 0006) send a PostgreSQL notification
naming the channel when its row changes, delivered when the change commits; an empty
name (a TRUNCATE) means "every channel". One dedicated connection per process listens.

Notifications sent while the connection is down are lost, so the whole cache is
cleared whenever listening (re)starts or stops; a connection that dies silently is
found by a periodic ping. Until it is back, the cache's TTL bounds how stale an entry
can be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from channel_gateway.adapters.channel_cache import ChannelCache

log = logging.getLogger(__name__)

#: The notification channel the triggers of migration 0006 send on.
CHANNEL_CHANGED = "channel_config_changed"
#: How the listening connection shows in ``pg_stat_activity``.
APPLICATION_NAME = "channel-change-listener"


class ChannelChangeListener:
    """LISTEN on :data:`CHANNEL_CHANGED` and evict what it names from ``cache``."""

    def __init__(
        self,
        dsn: str,
        cache: ChannelCache,
        *,
        ping_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._dsn = dsn
        self._cache = cache
        self._ping_s = ping_s
        self._connect_timeout_s = connect_timeout_s
        self._max_backoff_s = max_backoff_s
        self._task: asyncio.Task[None] | None = None
        self._listened = False
        #: Set while notifications are being received (tests wait on it).
        self.listening = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="channel-change-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload:
            self._cache.invalidate(payload)
        else:
            self._cache.clear()

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._listened:  # it worked for a while: retry soon
                    backoff, self._listened = 0.5, False
                log.warning(
                    "channel change listener lost (%s: %s); retrying in %.1fs",
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(self._max_backoff_s, backoff * 2)

    async def _listen(self) -> None:
        """Listen until the connection fails (raises) or the task is cancelled."""
        lost = asyncio.Event()
        conn = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout_s,
            server_settings={"application_name": APPLICATION_NAME},
        )
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL_CHANGED, self._notified)
            # Whatever changed before this point was not heard: start from nothing.
            self._cache.clear()
            self.listening.set()
            self._listened = True
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), timeout=self._ping_s)
                if lost.is_set():
                    raise ConnectionError("listener connection closed")
                await conn.fetchval("SELECT 1", timeout=self._connect_timeout_s)
        finally:
            self.listening.clear()
            self._cache.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=self._connect_timeout_s)
            if not conn.is_closed():
                conn.terminate()
