"""The forecast at its edges, as plain objects: the method chosen at exactly one, two and
three weeks of history, the learned uplift's arithmetic, which uplift a promoted day gets,
the seasonal model's weekly pattern and intervals, the backtest's split of a history, MAPE,
and the seeded synthetic history (its shape and its CSV)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest
from scipy.stats import norm

from inventory_svc.domain import forecast as forecast_module
from inventory_svc.domain.forecast import (
    MIN_HISTORY_DAYS,
    MODEL_ETS,
    MODEL_MOVING_AVERAGE,
    MODEL_SEASONAL_NAIVE,
    Forecast,
    ForecastPoint,
    PromotionWindow,
    _apply_promotions,
    _learned_uplift,
    forecast_demand,
    seasonal_naive,
)
from inventory_svc.domain.forecast_backtest import backtest, mape
from inventory_svc.domain.forecast_synthetic import (
    BASE,
    PLANNED_UPLIFT,
    START,
    TRUE_UPLIFT,
    WEEKLY,
    main,
    synthetic_history,
)

END = date(2026, 11, 1)
Z90 = float(norm.ppf(0.95))
#: A week that sells most on Saturday and least on Monday, with a little noise that does
#: not repeat weekly (a noise-free series is fitted exactly and has no intervals).
WEEK = (8.0, 9.0, 10.0, 10.0, 13.0, 15.0, 11.0)
WOBBLE = (0.4, -0.3, 0.2, -0.5, 0.1, 0.3, -0.2, 0.5, -0.1, 0.0, 0.2)


def weekly(days: int) -> list[float]:
    return [WEEK[i % 7] + WOBBLE[i % 11] for i in range(days)]


def refused(call: object, *args: object, **kwargs: object) -> str:
    """The reason a call was refused with."""
    assert callable(call)
    with pytest.raises(ValueError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


# -- arguments ------------------------------------------------------------------------------


def test_bad_arguments_are_refused_with_the_reason() -> None:
    assert refused(forecast_demand, [1.0], END, 0) == "horizon must be at least one day"
    for level in (0.0, 1.0):
        assert refused(forecast_demand, [1.0], END, 1, level=level) == (
            "level must be between 0 and 1"
        )
    assert refused(forecast_demand, [math.nan], END, 1) == (
        "history must be finite and non-negative"
    )
    assert refused(seasonal_naive, [1.0] * 6, 1) == (
        "seasonal naive needs at least one week of history"
    )


# -- the fallback at its boundaries -----------------------------------------------------------


def test_one_week_exactly_repeats_the_week() -> None:
    forecast = forecast_demand([1.0, 2, 3, 4, 5, 6, 7], END, 8)
    assert forecast.model == MODEL_SEASONAL_NAIVE
    assert [p.mean for p in forecast.points] == [1, 2, 3, 4, 5, 6, 7, 1]


def test_two_weeks_exactly_take_the_spread_from_week_on_week_differences() -> None:
    # Every day sold two more than a week before: the differences do not vary, so the
    # repeated week is certain, however much the days of the week differ.
    history = [1.0, 2, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7, 8, 9]
    forecast = forecast_demand(history, END, 3)
    assert [(p.lower, p.mean, p.upper) for p in forecast.points] == [
        (3.0, 3.0, 3.0),
        (4.0, 4.0, 4.0),
        (5.0, 5.0, 5.0),
    ]
    assert (forecast.uplift, forecast.uplift_source) == (None, None)


def test_two_days_take_the_spread_from_their_sample_deviation() -> None:
    forecast = forecast_demand([2.0, 4.0], END, 1)
    assert forecast.model == MODEL_MOVING_AVERAGE
    point = forecast.points[0]
    assert point.upper == pytest.approx(3.0 + Z90 * math.sqrt(2))


def test_a_promotion_scales_the_whole_interval() -> None:
    history = [4.0, 6, 5, 7, 5, 6, 4, 5, 7, 4, 8, 6, 5, 6]
    plain = forecast_demand(history, END, 1).points[0]
    promo = PromotionWindow(END + timedelta(days=1), END + timedelta(days=1), 2.0)
    promoted = forecast_demand(history, END, 1, [promo]).points[0]
    assert plain.lower > 0
    assert (promoted.lower, promoted.mean, promoted.upper) == pytest.approx(
        (2 * plain.lower, 2 * plain.mean, 2 * plain.upper)
    )


# -- promotions -----------------------------------------------------------------------------


def test_a_learned_uplift_wins_over_the_planners_and_is_applied_by_share() -> None:
    day = END + timedelta(days=1)
    promotions = [PromotionWindow(day, day, expected_uplift=3.0, share=0.5)]
    ones = np.ones(2)
    points, expected, promoted = _apply_promotions(
        [day, day + timedelta(days=1)], ones, ones, ones, promotions, 2.0
    )
    assert [p.promotion_factor for p in points] == [1.5, 1.0]
    assert (expected, promoted) == (None, True)
    _, expected, promoted = _apply_promotions([day], ones, ones, ones, [], None)
    assert (expected, promoted) == (None, False)


def test_the_learned_uplift_is_what_sold_over_the_fitted_baseline_per_channel_share() -> None:
    promoted = np.array([False, True, True, False])
    flat = np.full(4, 10.0)
    # 50 sold over a baseline of 20 is x2.5 of the SKU: x4 of a channel with half of it.
    half = np.array([0.0, 0.5, 0.5, 0.0])
    assert _learned_uplift(np.array([10.0, 30, 20, 10]), flat, promoted, half) == 4.0
    # The shares are weighted by the baseline of their day; a negative baseline is none.
    shares = np.array([0.0, 1.0, 0.5, 0.0])
    fitted = np.array([10.0, -5.0, 20.0, 10.0])
    uplift = _learned_uplift(np.array([10.0, 0, 30, 10]), fitted, promoted, shares)
    assert uplift == pytest.approx(1.0 + (30 / 20 - 1.0) / 0.5)
    weighted = np.array([10.0, 30.0, 10.0, 10.0])
    share = (30 * 1.0 + 10 * 0.25) / 40
    quarter = np.array([0.0, 1.0, 0.25, 0.0])
    uplift = _learned_uplift(np.array([10.0, 60, 20, 10]), weighted, promoted, quarter)
    assert uplift == pytest.approx(1.0 + (80 / 40 - 1.0) / share)


def test_a_learned_uplift_without_a_baseline_is_none_and_never_negative() -> None:
    promoted = np.array([True, True])
    every = np.ones(2)
    assert _learned_uplift(np.array([5.0, 5.0]), np.array([0.0, -1.0]), promoted, every) == 1.0
    assert _learned_uplift(np.array([1.0, 0.0]), np.array([0.25, 0.25]), promoted, every) == 2.0
    assert _learned_uplift(np.array([2.0, 3.0]), np.array([5.0, 5.0]), promoted, every) == 0.5
    quarter = np.full(2, 0.25)
    assert _learned_uplift(np.zeros(2), np.array([5.0, 5.0]), promoted, quarter) == 0.0


# -- the seasonal model ---------------------------------------------------------------------


def test_three_weeks_fit_the_model_which_repeats_the_weekly_pattern() -> None:
    forecast = forecast_demand(weekly(MIN_HISTORY_DAYS), END, 7)
    assert forecast.model == MODEL_ETS and forecast.note is None
    assert (forecast.history_days, forecast.level) == (MIN_HISTORY_DAYS, 0.9)
    assert (forecast.uplift, forecast.uplift_source) == (None, None)
    means = [p.mean for p in forecast.points]
    assert means[5] - means[0] > 4  # Saturday over Monday, as in the history
    narrow = forecast_demand(weekly(MIN_HISTORY_DAYS), END, 7, level=0.5)
    for wide, tight in zip(forecast.points, narrow.points, strict=True):
        assert wide.lower < tight.lower <= tight.mean <= tight.upper < wide.upper


def test_a_model_without_finite_intervals_is_not_used_and_the_note_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unbounded(*args: object) -> Forecast:
        point = ForecastPoint(END + timedelta(days=1), 5.0, 0.0, math.inf)
        return Forecast(MODEL_ETS, (point,), MIN_HISTORY_DAYS, 0.9)

    monkeypatch.setattr(forecast_module, "_ets_forecast", unbounded)
    forecast = forecast_demand(weekly(MIN_HISTORY_DAYS), END, 1)
    assert forecast.model == MODEL_SEASONAL_NAIVE
    assert forecast.note is not None
    assert forecast.note.startswith(
        "the seasonal model could not be fitted (non-finite prediction); only 21 days"
    )


def test_a_slow_seller_with_any_sale_in_three_weeks_gets_the_model() -> None:
    one_sale = [0.0] * (MIN_HISTORY_DAYS - 1) + [1.0]
    assert forecast_demand(one_sale, END, 3).model == MODEL_ETS


def test_an_uplift_is_learned_from_a_promotion_on_the_last_day_of_history() -> None:
    history = weekly(35)
    for i in (12, 13, 34):
        history[i] *= 2
    first = END - timedelta(days=34)
    promotions = [
        PromotionWindow(first + timedelta(days=12), first + timedelta(days=13), 1.5),
        PromotionWindow(END, END + timedelta(days=2), 5.0),  # the last day and two ahead
    ]
    forecast = forecast_demand(history, END, 4, promotions)
    assert (forecast.model, forecast.uplift_source) == (MODEL_ETS, "learned")
    assert forecast.uplift is not None and 1.6 < forecast.uplift < 2.4
    factors = [p.promotion_factor for p in forecast.points]
    assert factors == pytest.approx([forecast.uplift, forecast.uplift, 1.0, 1.0])


# -- backtest and MAPE ----------------------------------------------------------------------


def test_the_backtest_fits_what_came_before_the_hold_out_with_its_promotions() -> None:
    demand = [1.0, 2, 3, 4, 5, 6, 7, 8, 2, 3, 4, 5, 6, 7, 8]
    end = END
    first_held_out = end - timedelta(days=6)
    promo = PromotionWindow(first_held_out, first_held_out, 2.0)
    result = backtest(demand, end, [promo], holdout_days=7)
    assert (result.model, result.forecast.history_days) == (MODEL_SEASONAL_NAIVE, 8)
    assert result.forecast.points[0].day == first_held_out
    assert [p.mean for p in result.forecast.points] == [4, 3, 4, 5, 6, 7, 8]
    assert result.naive_mape == 0.0 and result.model_mape == pytest.approx(1 / 7)


def test_the_backtest_needs_more_than_a_week_besides_the_hold_out() -> None:
    assert refused(backtest, [1.0] * 14, END, holdout_days=7) == (
        "the history is too short for this hold-out"
    )
    assert backtest([1.0] * 15, END, holdout_days=7).forecast.history_days == 8


def test_mape_counts_every_day_with_demand_and_needs_one() -> None:
    assert mape([1, 4], [2, 4]) == 0.5
    assert refused(mape, [0, 0], [1, 1]) == "MAPE needs at least one day with demand"
    with pytest.raises(ValueError):
        mape([1, 2], [1])


# -- the synthetic history ------------------------------------------------------------------


def test_the_synthetic_history_has_a_level_a_trend_and_its_promotions() -> None:
    history = synthetic_history()
    assert history.day(3) == START + timedelta(days=3)
    promoted = {
        i
        for i in range(len(history.demand))
        if any(p.covers(history.day(i)) for p in history.promotions)
    }
    plain = [q for i, q in enumerate(history.demand) if i not in promoted]
    first_weeks, last_weeks = plain[:28], plain[-28:]
    level = BASE * sum(WEEKLY) / 7
    assert 0.9 * level < sum(first_weeks) / 28 < 1.15 * level
    assert sum(last_weeks) > 1.2 * sum(first_weeks)  # ~0.04 units a day more, every day
    for window in history.promotions:
        days = [i for i in promoted if window.covers(history.day(i))]
        lifted = sum(history.demand[i] for i in days)
        week_before = sum(history.demand[i - 7] for i in days)
        assert 0.8 * TRUE_UPLIFT < lifted / week_before < 1.2 * TRUE_UPLIFT
        assert window.expected_uplift == PLANNED_UPLIFT


def test_a_short_synthetic_history_keeps_its_promotions_inside() -> None:
    history = synthetic_history(days=60)
    assert [((p.end - p.start).days + 1) for p in history.promotions] == [5, 4]
    for window in history.promotions:
        assert history.start <= window.start <= window.end <= history.end
    assert refused(synthetic_history, days=59) == "a synthetic history has at least 60 days"


def test_the_synthetic_history_prints_as_csv(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--days", "60", "--seed", "7"])
    rows = capsys.readouterr().out.splitlines()
    history = synthetic_history(seed=7, days=60)
    assert rows[0] == "day,qty,promotion"
    assert rows[1] == f"{START.isoformat()},{history.demand[0]},0"
    assert [int(row.split(",")[1]) for row in rows[1:]] == list(history.demand)
    flags = [int(row.split(",")[2]) for row in rows[1:]]
    promoted = [history.day(i) for i, flag in enumerate(flags) if flag]
    assert len(promoted) == 9
    assert all(any(p.covers(day) for p in history.promotions) for day in promoted)


def test_the_synthetic_history_script_defaults_to_the_seeded_year(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main([])
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [int(row.split(",")[1]) for row in rows] == list(synthetic_history().demand)
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "A seeded, synthetic but realistic daily sales history" in capsys.readouterr().out
