"""The forecast for a short history, exactly, as plain objects: no sales (zero), under a
week (the average, its spread from the sample deviation), one to three weeks (each
weekday repeats, the spread from the deviation or the week-on-week differences, growing
with the weeks ahead), and a promotion's factor with the largest overlapping uplift."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest
from scipy.stats import norm

from inventory_svc.domain.forecast import PromotionWindow, forecast_demand, seasonal_naive

END = date(2026, 11, 1)
Z = float(norm.ppf(0.95))


def day(n: int) -> date:
    return END + timedelta(days=n)


def test_no_sales_forecast_zero_and_say_so() -> None:
    for history in ([], [0.0, 0.0, 0.0]):
        forecast = forecast_demand(history, END, 3)
        assert forecast.model == "no_history"
        assert forecast.note == "no sales in the history: the forecast is zero"
        assert [(p.day, p.mean, p.lower, p.upper) for p in forecast.points] == [
            (day(1), 0.0, 0.0, 0.0),
            (day(2), 0.0, 0.0, 0.0),
            (day(3), 0.0, 0.0, 0.0),
        ]
        assert (forecast.history_days, forecast.level, forecast.uplift) == (len(history), 0.9, None)


def test_under_a_week_the_average_with_the_sample_deviation() -> None:
    forecast = forecast_demand([1.0, 2.0, 6.0], END, 2)
    assert forecast.model == "moving_average"
    assert forecast.note == (
        "only 3 days of history (the seasonal model needs 21): the average daily demand so far"
    )
    sigma = float(np.std([1.0, 2.0, 6.0], ddof=1))
    for point in forecast.points:
        assert point.mean == pytest.approx(3.0)
        assert point.upper == pytest.approx(3.0 + Z * sigma)
        assert point.lower == 0.0  # clipped at zero
    one = forecast_demand([4.0], END, 1).points[0]
    assert (one.mean, one.lower, one.upper) == pytest.approx((4.0, 0.0, 4.0 + Z * 4.0))


def test_one_to_two_weeks_repeat_each_weekday_with_the_deviation_growing_per_week() -> None:
    history = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 11.0, 12.0, 13.0]
    forecast = forecast_demand(history, END, 9)
    assert forecast.model == "seasonal_naive"
    assert forecast.note == (
        "only 10 days of history (the seasonal model needs 21): each weekday repeats its"
        " value of the last week"
    )
    sigma = float(np.std(history, ddof=1))
    expected_means = seasonal_naive(history, 9)
    assert expected_means[:3] == [40.0, 50.0, 60.0]
    for i, point in enumerate(forecast.points):
        spread = Z * sigma * math.sqrt(1 + i // 7)
        assert point.mean == expected_means[i]
        assert point.upper == pytest.approx(expected_means[i] + spread)
        assert point.lower == pytest.approx(max(expected_means[i] - spread, 0.0))


def test_two_weeks_and_more_take_the_spread_from_week_on_week_differences() -> None:
    history = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 6.0, 6.0, 9.0, 8.0, 12.0, 10.0, 11.0, 7.0]
    forecast = forecast_demand(history, END, 8)
    y = np.array(history)
    sigma = float(np.std(y[7:] - y[:-7], ddof=1))
    assert forecast.model == "seasonal_naive"
    first, eighth = forecast.points[0], forecast.points[7]
    assert first.mean == 6.0 and first.upper == pytest.approx(6.0 + Z * sigma)
    assert eighth.upper == pytest.approx(eighth.mean + Z * sigma * math.sqrt(2))
    flat = forecast_demand([3.0] * 14, END, 1).points[0]
    assert (flat.mean, flat.lower, flat.upper) == (3.0, 3.0, 3.0)


def test_a_promotion_lifts_its_share_by_the_largest_overlapping_uplift() -> None:
    promotions = [
        PromotionWindow(day(2), day(3), expected_uplift=3.0, share=0.5),
        PromotionWindow(day(3), day(3), expected_uplift=1.5),
        PromotionWindow(day(-30), day(-20), expected_uplift=9.0),
    ]
    forecast = forecast_demand([4.0] * 7, END, 4, promotions)
    assert [p.promotion_factor for p in forecast.points] == [1.0, 2.0, 2.0, 1.0]
    assert [p.mean for p in forecast.points] == [4.0, 8.0, 8.0, 4.0]
    assert (forecast.uplift, forecast.uplift_source) == (3.0, "expected")
    assert forecast.total(2) == 12.0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="horizon must be at least one day"):
        forecast_demand([1.0], END, 0)
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        forecast_demand([1.0], END, 1, level=1.0)
    with pytest.raises(ValueError, match="finite and non-negative"):
        forecast_demand([1.0, -1.0], END, 1)
    with pytest.raises(ValueError, match="at least one week"):
        seasonal_naive([1.0] * 6, 1)
