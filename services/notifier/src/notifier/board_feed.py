"""The board's live snapshot: computed from the database, shared by every open board.

The database is the source of truth (several notifier replicas may each hold board
streams), so each replica polls a cheap fingerprint (the newest event's sequence number,
the number of open alerts, the current minute) at most once per interval, whatever the
number of open boards, and recomputes the compact snapshot only when it changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fastapi.encoders import jsonable_encoder

from notifier.adapters.board import BoardQueries
from notifier.domain.board import Counts, minute_of, seconds_left, sparkline
from oms_messaging import UnitOfWork
from oms_messaging.errors import is_transient

log = logging.getLogger(__name__)

#: Minutes in the throughput sparkline.
SPARKLINE_MINUTES = 30
#: Rows per list in the snapshot (the rest is paged through /board/api/...).
SNAPSHOT_ROWS = 10

Fingerprint = tuple[int, int, datetime]


class UowSource(Protocol):
    """Anything with units of work: the service runtime, or a test stand-in."""

    def uow(self) -> UnitOfWork: ...


async def build_snapshot(queries: BoardQueries, *, now: datetime) -> dict[str, Any]:
    """Everything the board's first screen shows, small whatever the number of orders."""
    counts = Counts.of(await queries.counts())
    since = minute_of(now) - timedelta(minutes=SPARKLINE_MINUTES - 1)
    per_minute = sparkline(await queries.throughput(since), now=now, minutes=SPARKLINE_MINUTES)
    sla = await queries.sla(limit=SNAPSHOT_ROWS, offset=0)
    exceptions = await queries.exceptions(cause=None, limit=SNAPSHOT_ROWS, offset=0)
    alerts = await queries.open_alerts(limit=SNAPSHOT_ROWS)
    credit = await queries.credit_degraded(limit=SNAPSHOT_ROWS, offset=0)
    snapshot = {
        "now": now,
        "counts": {
            "cells": counts.cells,
            "by_state": counts.by_state,
            "by_channel": counts.by_channel,
            "total": counts.total,
        },
        "throughput": {"minutes": SPARKLINE_MINUTES, "per_minute": per_minute},
        "sla": {"items": [sla_item(r, now) for r in sla.items], "total": sla.total},
        "exceptions": {
            "by_cause": await queries.exception_stats(),
            "items": exceptions.items,
            "total": exceptions.total,
        },
        "alerts": {"items": alerts.items, "total": alerts.total},
        "low_stock": await queries.low_stock(limit=SNAPSHOT_ROWS),
        "paused_channels": await queries.paused_channels(limit=SNAPSHOT_ROWS),
        "credit_degraded": {"items": credit.items, "total": credit.total},
    }
    encoded: dict[str, Any] = jsonable_encoder(snapshot)
    return encoded


def sla_item(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An SLA row with the seconds left at ``now`` (the page counts down from there)."""
    return {**row, "seconds_left": seconds_left(row["sla_deadline"], now)}


class BoardFeed:
    """One replica's view of the board: the latest snapshot, refreshed on change."""

    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s
        self._lock = asyncio.Lock()
        self._checked_at = float("-inf")
        self._fingerprint: Fingerprint | None = None
        self._snapshot: dict[str, Any] | None = None
        #: Increases each time the snapshot changes (the SSE event id).
        self.version = 0

    async def latest(self, source: UowSource) -> tuple[int, dict[str, Any]]:
        """The current snapshot and its version, checking the database at most once per
        interval for all callers together."""
        async with self._lock:
            if self._snapshot is None or time.monotonic() - self._checked_at >= self.interval_s:
                await self._refresh(source)
            assert self._snapshot is not None
            return self.version, self._snapshot

    async def _refresh(self, source: UowSource) -> None:
        now = datetime.now(UTC)
        async with source.uow() as uow:
            queries = BoardQueries(uow.session)
            seq, open_alerts = await queries.fingerprint()
            fingerprint = (seq, open_alerts, minute_of(now))
            if fingerprint != self._fingerprint or self._snapshot is None:
                self._snapshot = await build_snapshot(queries, now=now)
                self._fingerprint = fingerprint
                self.version += 1
        self._checked_at = time.monotonic()

    async def stream(self, source: UowSource) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Each new snapshot once, starting with the current one; forever."""
        sent = -1
        while True:
            try:
                version, snapshot = await self.latest(source)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # The database is briefly away: the board keeps its last picture.
                log.warning("board snapshot unavailable", extra={"error": type(exc).__name__})
            else:
                if version != sent:
                    sent = version
                    yield version, snapshot
            await asyncio.sleep(self.interval_s)
