"""A seeded, synthetic but realistic daily sales history for backtesting the forecast.

What shapes it, and why each part is there:

- a weekly pattern (a quiet Monday, a busy Friday and Saturday): what the seasonal part
  of the model has to find;
- a linear trend (the SKU grows ~0.04 units/day a day): what seasonal-naive cannot follow;
- two promotions, each lifting demand by :data:`TRUE_UPLIFT` for a few days: one in the
  training part (the model learns the uplift from it) and one inside the last 28 days
  (the backtest sees whether the learned uplift is applied). The calendar says the
  planner expected less (:data:`PLANNED_UPLIFT`), as planners often do;
- noise: Poisson counts around a mean that itself wobbles day to day (lognormal, 8 %),
  so the series is integer and over-dispersed like real unit sales.

The same seed gives the same history everywhere (numpy's PCG64), so the unit test and
``make bench`` backtest the very same numbers. Run as a script to print it as CSV::

    python -m inventory_svc.domain.forecast_synthetic [--seed 2026] [--days 365]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from inventory_svc.domain.forecast import PromotionWindow

DEFAULT_SEED = 2026
DEFAULT_DAYS = 365
#: The history's first day (a Monday, so the weekday pattern below reads naturally).
START = date(2025, 11, 3)
#: Monday .. Sunday.
WEEKLY = (0.80, 0.90, 0.95, 1.00, 1.20, 1.35, 1.05)
BASE = 40.0
TREND_PER_DAY = 0.04
TRUE_UPLIFT = 1.8
PLANNED_UPLIFT = 1.5
NOISE_SIGMA = 0.08
#: Days (from the start) of the two promotions: (first day, length).
PROMOTIONS = ((150, 5), (DEFAULT_DAYS - 16, 4))


@dataclass(frozen=True)
class SyntheticHistory:
    start: date
    demand: tuple[int, ...]
    promotions: tuple[PromotionWindow, ...]

    @property
    def end(self) -> date:
        return self.start + timedelta(days=len(self.demand) - 1)

    def day(self, i: int) -> date:
        return self.start + timedelta(days=i)


def synthetic_history(seed: int = DEFAULT_SEED, days: int = DEFAULT_DAYS) -> SyntheticHistory:
    """The seeded history of ``days`` days (the promotions scale with a shorter history)."""
    if days < 60:
        raise ValueError("a synthetic history has at least 60 days")
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    mean = (BASE + TREND_PER_DAY * t) * np.array([WEEKLY[(START.weekday() + i) % 7] for i in t])
    windows = []
    for first, length in PROMOTIONS:
        first = min(first * days // DEFAULT_DAYS, days - length - 1)
        mean[first : first + length] *= TRUE_UPLIFT
        start = START + timedelta(days=int(first))
        windows.append(PromotionWindow(start, start + timedelta(days=length - 1), PLANNED_UPLIFT))
    noisy = mean * rng.lognormal(0.0, NOISE_SIGMA, days)
    demand = rng.poisson(noisy)
    return SyntheticHistory(START, tuple(int(v) for v in demand), tuple(windows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    args = parser.parse_args(argv)
    history = synthetic_history(args.seed, args.days)
    promoted = {
        history.day(i)
        for i in range(len(history.demand))
        if any(p.covers(history.day(i)) for p in history.promotions)
    }
    out = sys.stdout
    out.write("day,qty,promotion\n")
    for i, qty in enumerate(history.demand):
        day = history.day(i)
        out.write(f"{day.isoformat()},{qty},{int(day in promoted)}\n")


if __name__ == "__main__":
    main()
