"""What a scenario reports, and how it is written: JSON, a Markdown table, the summary.

A :class:`Measure` is one figure of ours, optionally beside its reference (the raw database
or broker limit measured in the same run); the ratio is ours / reference. A :class:`Check`
is a correctness figure that must hold (oversold units, lost orders): benchmarks report
speed, but a fast wrong answer must not look like a win.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class Measure:
    key: str
    label: str
    value: float | None
    unit: str
    reference: float | None = None
    reference_label: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.reference:
            return None
        return self.value / self.reference


@dataclass
class Check:
    key: str
    label: str
    value: Any
    expected: Any

    @property
    def ok(self) -> bool:
        return bool(self.value == self.expected)


@dataclass
class Result:
    scenario: str
    title: str
    quick: bool
    parameters: dict[str, Any] = field(default_factory=dict)
    measures: list[Measure] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    #: Supporting numbers (counts, phase timings) that are not headline figures.
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    timestamp: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    duration_s: float | None = None
    error: str | None = None

    def measure(
        self,
        key: str,
        label: str,
        value: float | None,
        unit: str,
        *,
        reference: float | None = None,
        reference_label: str | None = None,
    ) -> Measure:
        m = Measure(key, label, value, unit, reference, reference_label)
        self.measures.append(m)
        return m

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a step of the scenario into ``details["phases_s"]`` (set-up included)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            phases = self.details.setdefault("phases_s", {})
            phases[name] = round(time.perf_counter() - started, 2)

    def check(self, key: str, label: str, value: Any, expected: Any) -> Check:
        c = Check(key, label, value, expected)
        self.checks.append(c)
        return c

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        figures = {
            m.key: {"label": m.label, "value": m.value, "unit": m.unit} for m in self.measures
        }
        reference = {
            m.key: {"label": m.reference_label, "value": m.reference, "unit": m.unit}
            for m in self.measures
            if m.reference is not None
        }
        ratio = {m.key: m.ratio for m in self.measures if m.reference is not None}
        return {
            "scenario": self.scenario,
            "title": self.title,
            "quick": self.quick,
            "ok": self.ok,
            "error": self.error,
            "figures": figures,
            "reference": reference,
            "ratio": ratio,
            "checks": {
                c.key: {"label": c.label, "value": c.value, "expected": c.expected, "ok": c.ok}
                for c in self.checks
            },
            "parameters": self.parameters,
            "details": self.details,
            "notes": self.notes,
            "machine": self.machine,
            "timestamp": self.timestamp,
            "duration_s": self.duration_s,
            "measures": [asdict(m) | {"ratio": m.ratio} for m in self.measures],
        }


# -- formatting ------------------------------------------------------------------------


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        digits = 0 if abs(value) >= 1000 else 1 if abs(value) >= 10 else 2
        text = f"{value:,.{digits}f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def fmt_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.3f}"


def machine_line(machine: dict[str, Any]) -> str:
    mem = machine.get("memory_gib")
    parts = [
        f"{machine.get('cores', '?')} cores",
        f"{mem:.1f} GiB" if isinstance(mem, float) else "memory ?",
        f"Python {machine.get('python', '?')}",
    ]
    if machine.get("postgres"):
        parts.append(f"PostgreSQL {machine['postgres']}")
    if machine.get("broker"):
        parts.append(f"broker {machine['broker']}")
    return ", ".join(parts)


def to_markdown(result: Result) -> str:
    status = "ok" if result.ok else "FAILED"
    mode = "quick" if result.quick else "full"
    lines = [
        f"## {result.scenario}: {result.title}",
        "",
        f"{result.timestamp}, {mode} run, {fmt(result.duration_s, 's')}; "
        f"{machine_line(result.machine)}. Result: **{status}**",
        "",
    ]
    if result.error:
        lines += [f"Error: `{result.error}`", ""]
    if result.measures:
        lines += [
            "| figure | ours | reference | reference value | ratio (ours / ref.) |",
            "|---|---:|---|---:|---:|",
        ]
        for m in result.measures:
            has_ref = m.reference is not None or m.reference_label
            lines.append(
                f"| {m.label} | {fmt(m.value, m.unit)} | {m.reference_label or '-'} | "
                f"{fmt(m.reference, m.unit) if has_ref else '-'} | "
                f"{fmt_ratio(m.ratio) if has_ref else '-'} |"
            )
        lines.append("")
    if result.checks:
        lines += ["| check | value | expected | |", "|---|---:|---:|---|"]
        for c in result.checks:
            lines.append(
                f"| {c.label} | {fmt(c.value)} | {fmt(c.expected)} | "
                f"{'ok' if c.ok else '**FAIL**'} |"
            )
        lines.append("")
    if result.parameters:
        params = ", ".join(f"{k}={v}" for k, v in result.parameters.items())
        lines += [f"Parameters: {params}", ""]
    phases = result.details.get("phases_s")
    if phases:
        lines += ["Phases (s): " + ", ".join(f"{k} {v}" for k, v in phases.items()), ""]
    for note in result.notes:
        lines.append(f"- {note}")
    if result.notes:
        lines.append("")
    return "\n".join(lines)


def summary_markdown(results: list[dict[str, Any]], sections: list[str]) -> str:
    """The overview table of every scenario's latest result, then each scenario's section."""
    lines = [
        "# Benchmark summary",
        "",
        "Latest result of each scenario (`python -m bench [--quick] [--scale F] [scenario ...]`). "
        "Ratio = ours / reference, both measured in the same run.",
        "",
        "| scenario | run | figure | ours | reference | ratio | checks |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for data in results:
        run = f"{data.get('timestamp', '?')} ({'quick' if data.get('quick') else 'full'})"
        checks = "ok" if data.get("ok") else "**FAILED**"
        measures = [m for m in data.get("measures", []) if m.get("reference") is not None]
        if not measures:
            lines.append(f"| {data['scenario']} | {run} | - | - | - | - | {checks} |")
        for m in measures:
            lines.append(
                f"| {data['scenario']} | {run} | {m['label']} | {fmt(m['value'], m['unit'])} | "
                f"{fmt(m['reference'], m['unit'])} ({m['reference_label']}) | "
                f"{fmt_ratio(m.get('ratio'))} | {checks} |"
            )
    lines.append("")
    return "\n".join(lines + sections)


def write_result(result: Result, results_dir: Path) -> str:
    """Write ``<scenario>.json`` and ``<scenario>.md``; returns the Markdown."""
    results_dir.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(result)
    (results_dir / f"{result.scenario}.json").write_text(
        json.dumps(result.to_json(), indent=2, default=str) + "\n"
    )
    (results_dir / f"{result.scenario}.md").write_text(markdown + "\n")
    return markdown


def write_summary(results_dir: Path, order: list[str]) -> Path:
    """``SUMMARY.md`` from every ``<scenario>.json`` present (registered order first)."""
    loaded: dict[str, dict[str, Any]] = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "scenario" in data:
            loaded[data["scenario"]] = data
    names = [n for n in order if n in loaded] + sorted(set(loaded) - set(order))
    sections = []
    for name in names:
        md = results_dir / f"{name}.md"
        if md.exists():
            sections.append(md.read_text())
    path = results_dir / "SUMMARY.md"
    path.write_text(summary_markdown([loaded[n] for n in names], sections))
    return path


# -- the machine -----------------------------------------------------------------------


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        return None


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info(root: Path) -> dict[str, Any]:
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "git_commit": _git_commit(root),
    }
