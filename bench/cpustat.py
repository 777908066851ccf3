"""CPU seconds per process group over one phase: which part of the stack an order costs.

On two shared cores, orders/s moves with whatever else the machine is doing; the CPU
each process spent per order does not, much. So a scenario reports, beside its rates,
the milliseconds of CPU per order of each service, of the PostgreSQL backends serving
the stack's databases, of the broker and of the benchmark client itself: the figure that
says which change to make next, and whether a change paid.

Linux only: user + system time from ``/proc/<pid>/stat`` (all threads of the process).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def postgres_backends(databases: Iterable[str]) -> list[int]:
    """Pids of the PostgreSQL backends connected to any of ``databases`` (by their title,
    ``postgres: [<cluster>:] <user> <database> <client> <state>``)."""
    wanted = set(databases)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        words = title.split()
        if words[:1] == ["postgres:"] and wanted.intersection(words[2:4]):
            pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds per group between :meth:`start` and :meth:`stop`.

    ``groups`` maps a group's name to a function giving its pids now: called at both
    ends, so backends that connect during the phase count from zero.
    """

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self._groups = groups
        self._before: dict[str, dict[int, float]] = {}
        self.seconds: dict[str, float] = {}

    def _snapshot(self) -> dict[str, dict[int, float]]:
        return {
            name: {pid: s for pid in pids() if (s := cpu_seconds(pid)) is not None}
            for name, pids in self._groups.items()
        }

    def start(self) -> None:
        self._before = self._snapshot()

    def stop(self) -> None:
        after = self._snapshot()
        self.seconds = {
            name: sum(s - self._before.get(name, {}).get(pid, 0.0) for pid, s in now.items())
            for name, now in after.items()
        }

    def per_item_ms(self, items: int) -> dict[str, float]:
        """Milliseconds of CPU per item (order) of each group."""
        return {name: s * 1000 / items for name, s in self.seconds.items()} if items else {}
