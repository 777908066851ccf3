"""A sampling profiler on every service while a scenario's burst runs (``--profile``).

Each service process is recorded by py-spy (a sampling profiler that reads the process
from outside: the service runs unchanged) into collapsed stacks; at the end the top
functions per service are summarised, by own time (where the CPU was) and by inclusive
time (what it was doing it for), beside the figures, so the next optimisation is chosen
on data. The raw stacks stay in ``bench/results/profiles/`` for a flame graph.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Samples per second: enough for a 10 s burst, cheap enough not to skew it much.
RATE = 50
TOP = 12


def py_spy() -> str | None:
    """The py-spy executable beside this interpreter, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Profile:
    """One service's samples: collapsed stacks (``frame;frame;... count``)."""

    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)

    @classmethod
    def parse(cls, text: str) -> Profile:
        profile = cls()
        for line in text.splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_short(f) for f in stack.split(";") if f]
            if not frames:
                continue
            profile.samples += count
            profile.own[frames[-1]] += count
            for frame in set(frames):
                profile.inclusive[frame] += count
        return profile

    def top(self, counter: Counter[str], n: int = TOP) -> list[tuple[str, float]]:
        total = max(self.samples, 1)
        return [(name, round(100 * c / total, 1)) for name, c in counter.most_common(n)]

    def summary(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "own_pct": self.top(self.own),
            "inclusive_pct": self.top(self._project_inclusive()),
        }

    def _project_inclusive(self) -> Counter[str]:
        """Inclusive time of our own code only (the event loop is in every stack)."""
        return Counter({k: v for k, v in self.inclusive.items() if _is_ours(k)})


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``: lines differ per call site."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(file).parts
    for anchor in ("site-packages", "src"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
            break
    return f"{name} ({'/'.join(parts[-3:])})" if parts else name


def _is_ours(frame: str) -> bool:
    return any(
        f"({p}" in frame
        for p in (
            "order_svc",
            "inventory_svc",
            "customer_svc",
            "channel_gateway",
            "notifier",
            "oms_",
        )
    )


class Profiler:
    """Records ``pids`` while the context is open (a no-op when not ``enabled``)."""

    def __init__(self, pids: Mapping[str, int], out_dir: Path, *, enabled: bool) -> None:
        self.pids = dict(pids)
        self.out_dir = out_dir
        self.enabled = enabled and py_spy() is not None
        self.missing_tool = enabled and not self.enabled
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self.profiles: dict[str, Profile] = {}

    def _path(self, name: str) -> Path:
        return self.out_dir / f"{name}.collapsed.txt"

    async def __aenter__(self) -> Profiler:
        if not self.enabled:
            return self
        self.out_dir.mkdir(parents=True, exist_ok=True)
        exe = py_spy()
        assert exe is not None
        for name, pid in self.pids.items():
            self._procs[name] = await asyncio.create_subprocess_exec(
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(RATE),
                "--format",
                "raw",
                "--nonblocking",
                "--subprocesses",
                "--output",
                str(self._path(name)),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        await asyncio.sleep(0.5)  # attached before the burst starts
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proc in self._procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for name, proc in self._procs.items():
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                continue
            path = self._path(name)
            if path.exists():
                self.profiles[name] = Profile.parse(path.read_text(errors="replace"))

    def details(self) -> dict[str, object]:
        if self.missing_tool:
            return {"error": "py-spy not installed (pip install py-spy)"}
        return {name: p.summary() for name, p in self.profiles.items()}

    def markdown(self) -> str:
        lines: list[str] = []
        for name, profile in self.profiles.items():
            lines += [
                f"### {name} ({profile.samples} samples)",
                "",
                "| own % | function |",
                "|---:|---|",
            ]
            lines += [f"| {pct} | `{fn}` |" for fn, pct in profile.top(profile.own)]
            lines += ["", "| inclusive % | our function |", "|---:|---|"]
            lines += [
                f"| {pct} | `{fn}` |" for fn, pct in profile.top(profile._project_inclusive())
            ]
            lines.append("")
        return "\n".join(lines)
