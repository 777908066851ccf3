"""The scenario registry: a name, a one-line title and the coroutine that runs it.

A scenario is ``async def run(ctx: BenchContext, result: Result) -> None``: it fills
``result`` as it goes (parameters first, then measures and checks), so a failure half-way
still leaves the figures measured so far in the report.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.harness import BenchContext
    from bench.report import Result

ScenarioFn = Callable[["BenchContext", "Result"], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    run: ScenarioFn
    #: Position in a full run (lower first); ties keep name order.
    order: int = 100


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, title: str, *, order: int = 100) -> Callable[[ScenarioFn], ScenarioFn]:
    """Register ``fn`` as scenario ``name`` (``python -m bench name``)."""

    def register(fn: ScenarioFn) -> ScenarioFn:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = Scenario(name=name, title=title, run=fn, order=order)
        return fn

    return register


def discover() -> list[Scenario]:
    """Import every module of ``bench.scenarios``; the registered scenarios, in run order."""
    import bench.scenarios as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return sorted(SCENARIOS.values(), key=lambda s: (s.order, s.name))
