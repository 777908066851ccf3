"""A loop that runs beside a scenario's burst (a sampler, a watcher) and stops with it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


class Background:
    """Starts ``coro`` as a task; :meth:`stop` cancels it and waits until it is gone."""

    def __init__(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._task = asyncio.create_task(coro, name=name)

    def check(self) -> None:
        """Raise what ended the loop early, if it did."""
        if self._task.done():
            self._task.result()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
