"""Daily demand forecast of one SKU: exponential smoothing with weekly seasonality and a
trend, a promotion uplift, prediction intervals, and a documented fallback. Pure: numbers
in, numbers out (no I/O), so it is unit-tested and backtested without a database.

The model (enough history, :data:`MIN_HISTORY_DAYS`): statsmodels' ``ETSModel`` with
additive error, additive damped trend and additive weekly seasonality (period 7), fitted
by statsmodels' maximum likelihood. Its prediction intervals are the model's own
(``get_prediction``). Nothing here fits parameters by hand.

Promotions multiply demand. A promotion covers a channel (or every channel) over a span
of days with a planner's expected uplift. When the history has promotion days, the
uplift is *learned*: the ratio of what sold on those days to the model's fitted baseline
there (the model is fitted on a series whose promotion days were deflated by a first
estimate, so the promotions do not inflate the baseline). Without promotion days in the
history, the promotion's own expected uplift is used. A channel promotion lifts only
that channel's share of the SKU's demand: the day's factor is ``1 + share * (uplift - 1)``.

The fallback (too little history): with at least a week, the seasonal-naive method (each
weekday repeats its last observed value; intervals from the spread of week-on-week
differences when there are two weeks, else from the week's spread); with less, the
moving average of what there is; with none, zero. The answer's ``model`` names the
method and ``note`` says why the model was not used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

#: Fewer days of history than this and the seasonal model is not fitted (three weeks:
#: the weekly pattern has then been seen three times, enough to separate it from noise).
MIN_HISTORY_DAYS = 21
#: At most this much history is fitted (bounds the CPU time of a fit to ~1 s).
MAX_FIT_DAYS = 730
SEASON = 7
#: Prediction intervals are this wide (two-sided) unless asked otherwise.
DEFAULT_LEVEL = 0.90

MODEL_ETS = "ets_additive_damped_trend_weekly"
MODEL_SEASONAL_NAIVE = "seasonal_naive"
MODEL_MOVING_AVERAGE = "moving_average"
MODEL_NONE = "no_history"

UpliftSource = Literal["learned", "expected"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PromotionWindow:
    """A promotion as the model sees it: days, the planner's uplift, the demand it lifts."""

    start: date
    end: date
    #: The planner's expected multiplier of the channel's demand (1.5 = +50 %).
    expected_uplift: float
    #: The promoted channel's share of the SKU's demand (1.0: every channel).
    share: float = 1.0

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class ForecastPoint:
    day: date
    mean: float
    lower: float
    upper: float
    #: The promotion multiplier applied to this day (1.0: no promotion).
    promotion_factor: float = 1.0


@dataclass(frozen=True)
class Forecast:
    model: str
    points: tuple[ForecastPoint, ...]
    history_days: int
    level: float
    note: str | None = None
    #: The uplift applied to future promotion days, and where it came from.
    uplift: float | None = None
    uplift_source: UpliftSource | None = None

    def total(self, days: int) -> float:
        """The expected demand over the first ``days`` days."""
        return float(sum(p.mean for p in self.points[:days]))


def forecast_demand(
    history: Sequence[float],
    history_end: date,
    horizon: int,
    promotions: Sequence[PromotionWindow] = (),
    *,
    level: float = DEFAULT_LEVEL,
) -> Forecast:
    """Forecast the ``horizon`` days after ``history_end``.

    ``history`` is the daily demand of consecutive days ending on ``history_end`` (days
    without sales are 0). ``promotions`` may cover past and future days alike.
    """
    if horizon < 1:
        raise ValueError("horizon must be at least one day")
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")
    y = np.asarray(history, dtype=np.float64)[-MAX_FIT_DAYS:]
    if np.any(y < 0) or not np.all(np.isfinite(y)):
        raise ValueError("history must be finite and non-negative")
    n = len(y)
    start = history_end - timedelta(days=n - 1)
    past_days = [start + timedelta(days=i) for i in range(n)]
    future_days = [history_end + timedelta(days=i + 1) for i in range(horizon)]

    if n >= MIN_HISTORY_DAYS and float(y.sum()) > 0:
        try:
            forecast = _ets_forecast(y, past_days, future_days, promotions, level)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        else:
            if all(math.isfinite(v) for p in forecast.points for v in (p.lower, p.upper)):
                return forecast
            failure = "non-finite prediction"
        fallback = _fallback(y, future_days, promotions, level)
        return replace(
            fallback,
            note=f"the seasonal model could not be fitted ({failure}); {fallback.note}",
        )
    return _fallback(y, future_days, promotions, level)


# -- the model ------------------------------------------------------------------------------


def _ets_forecast(
    y: FloatArray,
    past_days: list[date],
    future_days: list[date],
    promotions: Sequence[PromotionWindow],
    level: float,
) -> Forecast:
    past_windows = [_windows_on(day, promotions) for day in past_days]
    promo_mask = np.array([bool(w) for w in past_windows])
    shares = np.array([max((p.share for p in w), default=0.0) for w in past_windows])

    uplift: float | None = None
    source: UpliftSource | None = None
    fit = _fit_ets(y)
    if promo_mask.any():
        # First estimate on the raw series, then refit on a series whose promotion days
        # are deflated by it, so the baseline the ratio compares with is not inflated.
        uplift = _learned_uplift(y, fit.fittedvalues, promo_mask, shares)
        deflated = y.copy()
        deflated[promo_mask] = y[promo_mask] / (1.0 + shares[promo_mask] * (uplift - 1.0))
        fit = _fit_ets(deflated)
        uplift = _learned_uplift(y, fit.fittedvalues, promo_mask, shares)
        source = "learned"

    n = len(y)
    frame = fit.results.get_prediction(start=n, end=n + len(future_days) - 1).summary_frame(
        alpha=1.0 - level
    )
    means = np.asarray(frame["mean"], dtype=np.float64)
    lowers = np.asarray(frame["pi_lower"], dtype=np.float64)
    uppers = np.asarray(frame["pi_upper"], dtype=np.float64)
    points, applied, any_future_promo = _apply_promotions(
        future_days, means, lowers, uppers, promotions, uplift
    )
    if any_future_promo and source is None:
        source, uplift = "expected", applied
    return Forecast(
        model=MODEL_ETS,
        points=points,
        history_days=n,
        level=level,
        uplift=uplift,
        uplift_source=source,
    )


@dataclass(frozen=True)
class _Fitted:
    """A statsmodels ETS fit (untyped: statsmodels has no type hints) and its fitted values."""

    results: Any
    fittedvalues: FloatArray


def _fit_ets(y: FloatArray) -> _Fitted:
    # Imported here: statsmodels takes a second to import, and only fitting needs it.
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    series = pd.Series(y, index=pd.RangeIndex(len(y)))
    model = ETSModel(
        series,
        error="add",
        trend="add",
        damped_trend=True,
        seasonal="add",
        seasonal_periods=SEASON,
    )
    with warnings.catch_warnings():
        # Convergence chatter on flat or sparse series; the fit is still the best found.
        warnings.simplefilter("ignore")
        results = model.fit(disp=False)
    return _Fitted(results, np.asarray(results.fittedvalues, dtype=np.float64))


def _learned_uplift(
    y: FloatArray, fitted: FloatArray, mask: npt.NDArray[np.bool_], shares: FloatArray
) -> float:
    """The channel uplift that explains the promotion days: sold / fitted baseline there."""
    baseline = float(np.clip(fitted[mask], 0.0, None).sum())
    sold = float(y[mask].sum())
    if baseline <= 0:
        return 1.0
    total_ratio = sold / baseline
    share = float(np.average(shares[mask], weights=np.clip(fitted[mask], 1e-9, None)))
    return max(1.0 + (total_ratio - 1.0) / max(share, 1e-9), 0.0)


def _windows_on(day: date, promotions: Sequence[PromotionWindow]) -> list[PromotionWindow]:
    return [p for p in promotions if p.covers(day)]


def _apply_promotions(
    future_days: list[date],
    means: FloatArray,
    lowers: FloatArray,
    uppers: FloatArray,
    promotions: Sequence[PromotionWindow],
    learned: float | None,
) -> tuple[tuple[ForecastPoint, ...], float | None, bool]:
    """Points with each promotion day's factor applied (the largest, when promotions
    overlap); the expected uplift used (if any) and whether any future day is promoted."""
    points = []
    used_expected: float | None = None
    promoted = False
    for i, day in enumerate(future_days):
        factor = 1.0
        for promo in _windows_on(day, promotions):
            promoted = True
            uplift = learned if learned is not None else promo.expected_uplift
            if learned is None:
                used_expected = max(used_expected or 0.0, promo.expected_uplift)
            factor = max(factor, 1.0 + promo.share * (uplift - 1.0))
        mean = max(float(means[i]), 0.0) * factor
        points.append(
            ForecastPoint(
                day=day,
                mean=mean,
                lower=max(float(lowers[i]), 0.0) * factor,
                upper=max(float(uppers[i]), 0.0) * factor,
                promotion_factor=factor,
            )
        )
    return tuple(points), used_expected, promoted


# -- the fallback ---------------------------------------------------------------------------


def seasonal_naive(history: Sequence[float], horizon: int) -> list[float]:
    """Each future day repeats the same weekday of the last observed week."""
    y = list(history)
    if len(y) < SEASON:
        raise ValueError("seasonal naive needs at least one week of history")
    last_week = y[-SEASON:]
    return [float(last_week[i % SEASON]) for i in range(horizon)]


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def _fallback(
    y: FloatArray,
    future_days: list[date],
    promotions: Sequence[PromotionWindow],
    level: float,
) -> Forecast:
    n = len(y)
    horizon = len(future_days)
    z = _z(level)
    if n == 0 or float(y.sum()) == 0:
        means = np.zeros(horizon)
        spread = np.zeros(horizon)
        model = MODEL_NONE
        note = "no sales in the history: the forecast is zero"
    elif n >= SEASON:
        means = np.array(seasonal_naive(y.tolist(), horizon))
        if n >= 2 * SEASON:
            diffs = y[SEASON:] - y[:-SEASON]
            sigma = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0
        else:
            sigma = float(np.std(y, ddof=1))
        # The error of a repeated week grows with the number of weeks ahead.
        spread = np.array([z * sigma * math.sqrt(1 + i // SEASON) for i in range(horizon)])
        model = MODEL_SEASONAL_NAIVE
        note = (
            f"only {n} days of history (the seasonal model needs {MIN_HISTORY_DAYS}): "
            "each weekday repeats its value of the last week"
        )
    else:
        mean = float(y.mean())
        sigma = float(np.std(y, ddof=1)) if n > 1 else mean
        means = np.full(horizon, mean)
        spread = np.full(horizon, z * sigma)
        model = MODEL_MOVING_AVERAGE
        note = (
            f"only {n} days of history (the seasonal model needs {MIN_HISTORY_DAYS}): "
            "the average daily demand so far"
        )
    points, applied, _ = _apply_promotions(
        future_days, means, means - spread, means + spread, promotions, None
    )
    return Forecast(
        model=model,
        points=points,
        history_days=n,
        level=level,
        note=note,
        uplift=applied,
        uplift_source="expected" if applied is not None else None,
    )
