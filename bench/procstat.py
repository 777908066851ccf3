"""Memory of a process from /proc: resident set size now, its peak, a sampler.

Linux only (the stack runs there). ``VmHWM`` is the kernel's own high-water mark of the
resident set, so no short spike between two samples is missed; writing ``5`` to
``/proc/<pid>/clear_refs`` resets it, which lets a scenario measure the peak of one phase.
Where that is not allowed, the sampler's maximum is the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.background import Background

KIB = 1024
MIB = 1024 * 1024


def status_kib(pid: int, key: str) -> int | None:
    """A ``kB`` line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``); None when gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return parse_status_kib(text, key)


def parse_status_kib(text: str, key: str) -> int | None:
    """The value in kB of ``key`` in the text of a ``/proc/<pid>/status`` file."""
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == key:
            parts = rest.split()
            if parts and parts[0].isdigit():
                return int(parts[0])
    return None


def rss_bytes(pid: int) -> int | None:
    kib = status_kib(pid, "VmRSS")
    return None if kib is None else kib * KIB


def peak_rss_bytes(pid: int) -> int | None:
    kib = status_kib(pid, "VmHWM")
    return None if kib is None else kib * KIB


def reset_peak(pid: int) -> bool:
    """Reset the process's ``VmHWM`` to its current RSS; False when not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class RssSampler:
    """The largest RSS seen per process while the context is open (every ``interval_s``).

    On exit the kernel's high-water mark is read too; :meth:`peak` reports the larger of
    the two, so the figure is the true peak when the high-water mark was reset at entry.
    """

    pids: Mapping[str, int]
    interval_s: float = 0.1
    reset_at_start: bool = True
    sampled: dict[str, int] = field(default_factory=dict)
    high_water: dict[str, int] = field(default_factory=dict)
    reset_ok: bool = False
    _task: Background | None = None

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            rss = rss_bytes(pid)
            if rss is not None and rss > self.sampled.get(name, 0):
                self.sampled[name] = rss

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval_s)

    async def __aenter__(self) -> RssSampler:
        if self.reset_at_start:
            self.reset_ok = all([reset_peak(pid) for pid in self.pids.values()])
        self._sample()
        self._task = Background(self._run(), "rss-sampler")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            await self._task.stop()
        self._sample()
        for name, pid in self.pids.items():
            hwm = peak_rss_bytes(pid)
            if hwm is not None:
                self.high_water[name] = hwm

    def peak(self, name: str) -> int | None:
        """Peak RSS in bytes of ``name`` over the window (None if never seen)."""
        values = [v for v in (self.sampled.get(name), self._hwm(name)) if v is not None]
        return max(values) if values else None

    def _hwm(self, name: str) -> int | None:
        # Without a reset the high-water mark covers the process's whole life, not the window.
        return self.high_water.get(name) if self.reset_ok else None


@contextlib.asynccontextmanager
async def sample_rss(pids: Mapping[str, int], interval_s: float = 0.1) -> AsyncIterator[RssSampler]:
    async with RssSampler(pids, interval_s) as sampler:
        yield sampler
