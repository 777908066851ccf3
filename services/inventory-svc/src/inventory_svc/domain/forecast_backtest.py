"""Backtest: hold out the last days of a history, forecast them from what came before,
and score the forecast beside the seasonal-naive baseline by MAPE. Pure.

Seasonal-naive (each weekday repeats its value of the last week before the hold-out) is
the baseline a forecast must beat to be worth its CPU: it already knows the weekly
pattern; it knows nothing of trend, promotions or noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from inventory_svc.domain.forecast import Forecast, PromotionWindow, forecast_demand, seasonal_naive

#: The hold-out the issue asks for: the last four weeks.
HOLDOUT_DAYS = 28


@dataclass(frozen=True)
class BacktestResult:
    holdout_days: int
    model: str
    model_mape: float
    naive_mape: float
    forecast: Forecast

    @property
    def ratio(self) -> float:
        """Model MAPE / seasonal-naive MAPE: below 1 the model is better."""
        return self.model_mape / self.naive_mape


def mape(actual: Sequence[float], predicted: Sequence[float]) -> float:
    """Mean absolute percentage error over the days with demand (a zero day has no %)."""
    pairs = [(a, p) for a, p in zip(actual, predicted, strict=True) if a > 0]
    if not pairs:
        raise ValueError("MAPE needs at least one day with demand")
    return sum(abs(a - p) / a for a, p in pairs) / len(pairs)


def backtest(
    demand: Sequence[float],
    end: date,
    promotions: Sequence[PromotionWindow] = (),
    holdout_days: int = HOLDOUT_DAYS,
) -> BacktestResult:
    """Fit on all but the last ``holdout_days`` of ``demand`` (ending on ``end``), score both."""
    if len(demand) <= holdout_days + 7:
        raise ValueError("the history is too short for this hold-out")
    train = list(demand[:-holdout_days])
    actual = list(demand[-holdout_days:])
    train_end = end - timedelta(days=holdout_days)
    forecast = forecast_demand(train, train_end, holdout_days, promotions)
    predicted = [p.mean for p in forecast.points]
    return BacktestResult(
        holdout_days=holdout_days,
        model=forecast.model,
        model_mape=mape(actual, predicted),
        naive_mape=mape(actual, seasonal_naive(train, holdout_days)),
        forecast=forecast,
    )
