"""The burst over time: orders accepted, reserved and routed per second, and each
service's consumer lag, drawn as one SVG beside the figures.

Accepted comes from the clients' own answers; reserved and routed from order-svc's
transition times (read once, after the run); lag from every service's ``/metrics``,
sampled while the burst runs (a scrape costs the service one small query).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from bench.background import Background
from bench.harness import service_dsn
from oms_devstack.stack import Stack

#: Every scrape of ``/metrics`` also runs each service's gauge SQL (counts over orders and
#: the outbox, tables that grow through the run): at 0.5 s the watching cost PostgreSQL
#: about a tenth of its time at full size. Prometheus scrapes every 15-30 s; 2 s still
#: draws the lag of a run of minutes.
SAMPLE_S = 2.0
COLOURS = [
    "#1f77b4",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#17becf",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
]


@dataclass
class LagSampler:
    """Sum of ``oms_consumer_lag`` per service every ``SAMPLE_S`` while open (wall time)."""

    urls: Mapping[str, str]
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _task: Background | None = None

    async def _scrape(self, http: httpx.AsyncClient, name: str, url: str, at: float) -> None:
        with contextlib.suppress(httpx.HTTPError):
            text = (await http.get(f"{url}/metrics")).text
            lag = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("oms_consumer_lag{")
            )
            self.samples.setdefault(name, []).append((at, lag))

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
            while True:
                at = time.time()
                await asyncio.gather(
                    *(self._scrape(http, name, url, at) for name, url in self.urls.items())
                )
                await asyncio.sleep(SAMPLE_S)

    async def __aenter__(self) -> LagSampler:
        self._task = Background(self._run(), "lag-sampler")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            await self._task.stop()


async def transition_times(stack: Stack, states: Iterable[str]) -> dict[str, list[float]]:
    """Epoch seconds of every transition into each of ``states``."""
    conn = await asyncpg.connect(service_dsn(stack, "order-svc"))
    try:
        rows = await conn.fetch(
            "SELECT to_state, extract(epoch FROM at) AS t FROM order_transitions"
            " WHERE to_state = ANY($1::text[])",
            list(states),
        )
    finally:
        await conn.close()
    times: dict[str, list[float]] = {}
    for row in rows:
        times.setdefault(row["to_state"], []).append(float(row["t"]))
    return times


def per_second(times: Iterable[float], start: float) -> list[tuple[float, float]]:
    """(second since ``start``, count in that second) for every second up to the last."""
    counts = Counter(int(t - start) for t in times if t >= start)
    if not counts:
        return []
    return [(float(s), float(counts.get(s, 0))) for s in range(max(counts) + 1)]


def svg(
    rates: Mapping[str, list[tuple[float, float]]],
    lags: Mapping[str, list[tuple[float, float]]],
    title: str,
) -> str:
    """Two stacked line charts: orders/s by stage (top) and lag by service (bottom)."""
    width, height, pad = 900, 560, 60
    panel = (height - 3 * pad) / 2
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        ' font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="24" font-size="15">{title}</text>',
    ]
    xs = [x for series in (*rates.values(), *lags.values()) for x, _ in series]
    x_max = max(xs, default=1) or 1  # a burst inside one second puts every point at 0
    for index, (label, series, unit) in enumerate(
        (("orders per second", rates, "/s"), ("consumer lag (messages)", lags, ""))
    ):
        top = pad + index * (panel + pad)
        y_max = max((y for points in series.values() for _, y in points), default=1) or 1
        y_max = _nice(y_max)
        out += _axes(pad, top, width - 2 * pad, panel, x_max, y_max, label, unit)
        for n, (name, points) in enumerate(series.items()):
            colour = COLOURS[n % len(COLOURS)]
            path = " ".join(
                f"{pad + x / x_max * (width - 2 * pad):.1f},{top + panel - y / y_max * panel:.1f}"
                for x, y in points
            )
            if path:
                out.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>'
                )
            out.append(
                f'<text x="{width - pad - 150}" y="{top + 14 + 14 * n}" fill="{colour}">'
                f"{name}</text>"
            )
    out.append("</svg>")
    return "\n".join(out)


def _nice(value: float) -> float:
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _axes(
    left: float, top: float, w: float, h: float, x_max: float, y_max: float, label: str, unit: str
) -> list[str]:
    parts = [
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="black"/>',
        f'<text x="{left}" y="{top - 6}">{label}</text>',
        f'<text x="{left + w - 60}" y="{top + h + 28}">seconds</text>',
    ]
    for i in range(5):
        y = top + h - i / 4 * h
        parts.append(f'<text x="{left - 50}" y="{y + 4}">{y_max * i / 4:g}{unit}</text>')
        x = left + i / 4 * w
        parts.append(f'<text x="{x - 8}" y="{top + h + 16}">{x_max * i / 4:.0f}</text>')
    return parts


def write_picture(path: Path, content: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path.name
