"""forecast: the demand forecast's MAPE over the last 28 days of a seeded synthetic
history, beside the seasonal-naive baseline.

The history (``inventory_svc.domain.forecast_synthetic``): a year of daily sales with a
weekly pattern, a trend, two promotions (one in the training part, one inside the last
28 days) and over-dispersed noise. The model is fitted on all but the last 28 days and
forecasts them with the promotions calendar; seasonal-naive repeats the last training
week. Lower MAPE is better; the ratio model / baseline below 1 means the model wins. The
full run also backtests a few other seeds, so one lucky history cannot carry the claim.
No stack is started: this is the service's own forecasting code, pure CPU.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.harness import BenchContext
from bench.registry import scenario
from bench.report import Result
from inventory_svc.domain.forecast_backtest import HOLDOUT_DAYS, BacktestResult, backtest
from inventory_svc.domain.forecast_synthetic import DEFAULT_DAYS, DEFAULT_SEED, synthetic_history

EXTRA_SEEDS = (1, 2, 3, 4, 5)


def _run(seed: int) -> tuple[BacktestResult, float]:
    history = synthetic_history(seed)
    started = time.perf_counter()
    result = backtest(history.demand, history.end, history.promotions)
    return result, time.perf_counter() - started


@scenario("forecast", "demand forecast MAPE (last 28 days) vs seasonal-naive", order=90)
async def run(ctx: BenchContext, result: Result) -> None:
    seeds = [DEFAULT_SEED, *ctx.size(full=EXTRA_SEEDS, quick=())]
    result.parameters = {
        "history_days": DEFAULT_DAYS,
        "holdout_days": HOLDOUT_DAYS,
        "seed": DEFAULT_SEED,
        "extra_seeds": seeds[1:],
        "history": "weekly pattern, trend +0.04/day, 2 promotions (x1.8), Poisson+lognormal noise",
    }
    result.notes += [
        "MAPE = mean |actual - forecast| / actual over the 28 held-out days (lower is better); "
        "the ratio is model / seasonal-naive (below 1: the model is better).",
        "Seasonal-naive repeats the last training week: it knows the weekly pattern, not the "
        "trend, the promotion in the hold-out, nor how to average out noise.",
    ]
    with result.phase("backtest"):
        main, fit_s = await asyncio.to_thread(_run, DEFAULT_SEED)
    result.measure(
        "mape_pct",
        f"forecast MAPE, last {HOLDOUT_DAYS} days (seed {DEFAULT_SEED}, {main.model})",
        round(100 * main.model_mape, 2),
        "%",
        reference=round(100 * main.naive_mape, 2),
        reference_label="seasonal-naive MAPE",
    )
    result.details["fit_and_forecast_s"] = round(fit_s, 2)
    result.details["learned_uplift"] = (
        round(main.forecast.uplift, 3) if main.forecast.uplift is not None else None
    )
    result.check("beats_baseline", "model MAPE < seasonal-naive MAPE", main.ratio < 1, True)

    if len(seeds) > 1:
        with result.phase("other seeds"):
            others = [await asyncio.to_thread(_run, seed) for seed in seeds[1:]]
        ratios = [r.ratio for r, _ in others]
        result.measure(
            "mape_ratio_median_other_seeds",
            f"median MAPE ratio model / seasonal-naive over seeds {list(seeds[1:])}",
            round(statistics.median(ratios), 3),
            "x",
        )
        result.details["per_seed"] = {
            seed: {
                "model_mape_pct": round(100 * r.model_mape, 2),
                "naive_mape_pct": round(100 * r.naive_mape, 2),
                "ratio": round(r.ratio, 3),
            }
            for seed, (r, _) in zip(seeds[1:], others, strict=True)
        }
        result.check(
            "beats_baseline_all_seeds",
            "model beats seasonal-naive on every seed",
            all(r < 1 for r in ratios),
            True,
        )
