"""``python -m bench [--quick] [--list] [scenario ...]``: run scenarios, write the results."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence

import psutil

from bench.harness import RESULTS_DIR, BenchContext
from bench.registry import Scenario, discover
from bench.report import Result, machine_info, write_result, write_summary


def parse_args(argv: Sequence[str] | None, scenarios: list[Scenario]) -> argparse.Namespace:
    names = [s.name for s in scenarios]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the OMS benchmarks; each figure is reported beside its raw "
        "database or broker limit measured in the same run.",
    )
    parser.add_argument("scenarios", nargs="*", metavar="scenario", help=f"one of: {names}")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (all scenarios in < 3 min on 2 cores)"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the full sizes (orders, rows, customers) for a full run, e.g. 0.1 "
        "for 5,000 instead of 50,000 orders; ignored with --quick",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record each service with a sampling profiler (py-spy) during the burst and "
        "write its top functions beside the figures (bench/results/profiles/)",
    )
    parser.add_argument(
        "--kafka-bootstrap",
        default=None,
        help="use this broker instead of a private tansu per stack (it must be empty of "
        "other OMS stacks' consumer groups)",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="services' log level (default INFO, as deployed)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 10:
        parser.error("--scale must be in (0, 10]")
    unknown = [n for n in args.scenarios if n not in names]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(names)}")
    return args


#: CPU in use by others before a scenario starts above which its figures are flagged.
BUSY_PCT = 20.0


async def run_one(ctx: BenchContext, scenario: Scenario, machine: dict[str, object]) -> Result:
    result = Result(scenario=scenario.name, title=scenario.title, quick=ctx.quick)
    # How busy the machine is with nothing of ours running: a shared box skews the absolute
    # figures (the same-run reference shares the contention, so ratios suffer less).
    busy = await asyncio.to_thread(psutil.cpu_percent, 0.5)
    load = [round(x, 2) for x in os.getloadavg()]
    if busy > BUSY_PCT:
        result.notes.append(
            f"WARNING: the machine was busy before this run ({busy:.0f}% CPU in use by other "
            f"processes, load average {load[0]}): absolute figures are understated."
        )
    started = time.perf_counter()
    try:
        await scenario.run(ctx, result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    result.duration_s = round(time.perf_counter() - started, 1)
    if not ctx.quick and ctx.scale != 1.0:
        result.notes.append(f"Sizes are {ctx.scale:g} x the full sizes (--scale).")
    result.machine = machine | ctx.environment | {"cpu_busy_before_pct": busy, "loadavg": load}
    return result


async def run_all(ctx: BenchContext, chosen: list[Scenario], order: list[str]) -> bool:
    machine = machine_info(ctx.root)
    ok = True
    started = time.perf_counter()
    for scenario in chosen:
        print(f"== {scenario.name}: {scenario.title} ({'quick' if ctx.quick else 'full'})")
        result = await run_one(ctx, scenario, machine)
        print(write_result(result, ctx.results_dir), flush=True)
        ok = ok and result.ok
    summary = write_summary(ctx.results_dir, order)
    print(f"results: {summary.parent.relative_to(ctx.root)}/ (SUMMARY.md, <scenario>.json/.md)")
    outcome = "ok" if ok else "FAILED"
    print(f"{len(chosen)} scenario(s) in {time.perf_counter() - started:.0f} s: {outcome}")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scenarios = discover()
    args = parse_args(argv, scenarios)
    if args.list:
        for s in scenarios:
            print(f"{s.name:12} {s.title}")
        return 0
    chosen = [s for s in scenarios if not args.scenarios or s.name in args.scenarios]
    ctx = BenchContext(
        quick=args.quick,
        results_dir=RESULTS_DIR,
        kafka_bootstrap=args.kafka_bootstrap,
        log_level=args.log_level,
        scale=args.scale,
        profile=args.profile,
    )
    try:
        ok = asyncio.run(run_all(ctx, chosen, [s.name for s in scenarios]))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if ok else 1
