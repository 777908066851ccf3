"""The forecast model, its fallback, the promotion uplift, the backtest against
seasonal-naive on the seeded synthetic history, and the replenishment arithmetic. Pure:
no database, no broker."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from inventory_svc.domain import forecast as forecast_module
from inventory_svc.domain.forecast import (
    MIN_HISTORY_DAYS,
    MODEL_ETS,
    MODEL_MOVING_AVERAGE,
    MODEL_NONE,
    MODEL_SEASONAL_NAIVE,
    PromotionWindow,
    forecast_demand,
    seasonal_naive,
)
from inventory_svc.domain.forecast_backtest import HOLDOUT_DAYS, BacktestResult, backtest, mape
from inventory_svc.domain.forecast_synthetic import (
    PLANNED_UPLIFT,
    TRUE_UPLIFT,
    SyntheticHistory,
    synthetic_history,
)
from inventory_svc.domain.replenishment import (
    ReplenishmentInput,
    apportion,
    is_news,
    suggest,
)

END = date(2026, 11, 1)


@pytest.fixture(scope="module")
def history() -> SyntheticHistory:
    return synthetic_history()


@pytest.fixture(scope="module")
def result(history: SyntheticHistory) -> BacktestResult:
    return backtest(history.demand, history.end, history.promotions)


def test_the_model_beats_seasonal_naive_on_the_seeded_history(result: BacktestResult) -> None:
    assert result.model == MODEL_ETS
    assert result.holdout_days == HOLDOUT_DAYS == 28
    assert result.model_mape < result.naive_mape
    # Not by a hair: trend, promotion and noise are what the baseline cannot handle.
    assert result.ratio < 0.85


def test_the_uplift_is_learned_from_the_past_promotion(result: BacktestResult) -> None:
    forecast = result.forecast
    assert forecast.uplift_source == "learned"
    assert forecast.uplift is not None
    # The history's true uplift is 1.8 while the calendar says 1.5: it learned the truth.
    assert abs(forecast.uplift - TRUE_UPLIFT) < abs(forecast.uplift - PLANNED_UPLIFT)
    promoted = [p for p in forecast.points if p.promotion_factor > 1]
    assert len(promoted) == 4  # the promotion inside the hold-out
    assert all(p.promotion_factor == pytest.approx(forecast.uplift) for p in promoted)


def test_the_synthetic_history_is_seeded(history: SyntheticHistory) -> None:
    again = synthetic_history()
    assert again == history
    assert synthetic_history(seed=1).demand != history.demand
    assert len(history.demand) == 365 and len(history.promotions) == 2
    # A weekly pattern: Saturdays sell more than Mondays (the history starts on a Monday).
    mondays = history.demand[0::7]
    saturdays = history.demand[5::7]
    assert sum(saturdays) > 1.4 * sum(mondays)


def test_intervals_hold_the_mean_and_are_not_negative(result: BacktestResult) -> None:
    for point in result.forecast.points:
        assert 0 <= point.lower <= point.mean <= point.upper
    assert result.forecast.level == 0.9
    widths = [p.upper - p.lower for p in result.forecast.points]
    assert widths[-1] >= widths[0]  # uncertainty grows with the horizon


def test_days_follow_the_history() -> None:
    forecast = forecast_demand([5.0] * 30, END, 7)
    assert [p.day for p in forecast.points] == [END + timedelta(days=i) for i in range(1, 8)]


def test_without_past_promotions_the_expected_uplift_is_used(history: SyntheticHistory) -> None:
    demand = history.demand[:100]
    end = history.day(99)
    promo = PromotionWindow(end + timedelta(days=3), end + timedelta(days=4), 2.0)
    with_promo = forecast_demand(demand, end, 7, [promo])
    without = forecast_demand(demand, end, 7)
    assert with_promo.uplift_source == "expected" and with_promo.uplift == 2.0
    for i, (a, b) in enumerate(zip(with_promo.points, without.points, strict=True)):
        factor = 2.0 if i in (2, 3) else 1.0
        assert a.mean == pytest.approx(b.mean * factor)
        assert a.upper == pytest.approx(b.upper * factor)


def test_a_channel_promotion_lifts_only_its_share() -> None:
    demand = [10.0, 12, 9, 11, 10, 15, 14] * 4
    promo = PromotionWindow(END + timedelta(days=1), END + timedelta(days=1), 3.0, share=0.25)
    point = forecast_demand(demand, END, 7, [promo]).points[0]
    assert point.promotion_factor == pytest.approx(1 + 0.25 * (3.0 - 1))


def test_short_history_falls_back_to_seasonal_naive_and_says_so() -> None:
    demand = [1.0, 2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6, 7, 8]
    assert len(demand) < MIN_HISTORY_DAYS
    forecast = forecast_demand(demand, END, 10)
    assert forecast.model == MODEL_SEASONAL_NAIVE
    assert forecast.note and "seasonal model needs 21" in forecast.note
    assert [p.mean for p in forecast.points] == [2, 3, 4, 5, 6, 7, 8, 2, 3, 4]
    assert all(p.lower <= p.mean <= p.upper for p in forecast.points)


def test_a_few_days_fall_back_to_the_average() -> None:
    forecast = forecast_demand([4.0, 6.0, 5.0], END, 7)
    assert forecast.model == MODEL_MOVING_AVERAGE
    assert forecast.note is not None
    assert all(p.mean == pytest.approx(5.0) for p in forecast.points)


def test_no_sales_forecast_zero() -> None:
    for history in ([], [0.0] * 60):
        forecast = forecast_demand(history, END, 7)
        assert forecast.model == MODEL_NONE
        assert forecast.total(7) == 0
        assert forecast.note


def test_a_model_that_cannot_be_fitted_falls_back_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(y: object) -> object:
        raise ValueError("optimizer diverged")

    monkeypatch.setattr(forecast_module, "_fit_ets", broken)
    forecast = forecast_demand([3.0, 4, 5, 6, 7, 8, 9] * 4, END, 7)
    assert forecast.model == MODEL_SEASONAL_NAIVE
    assert forecast.note is not None
    assert "could not be fitted (ValueError: optimizer diverged)" in forecast.note
    assert [p.mean for p in forecast.points] == [3, 4, 5, 6, 7, 8, 9]


def test_bad_history_is_refused() -> None:
    with pytest.raises(ValueError):
        forecast_demand([1.0, -1.0], END, 7)
    with pytest.raises(ValueError):
        forecast_demand([1.0], END, 0)


def test_seasonal_naive_and_mape() -> None:
    assert seasonal_naive([1, 2, 3, 4, 5, 6, 7, 8], 9) == [2, 3, 4, 5, 6, 7, 8, 2, 3]
    assert mape([10, 20, 0], [11, 18, 5]) == pytest.approx((0.1 + 0.1) / 2)


# -- replenishment ---------------------------------------------------------------------------


def _inputs(**kw: object) -> ReplenishmentInput:
    values: dict[str, object] = {
        "sku": "S",
        "warehouse": "W",
        "forecast_over_lead_time": 70.4,
        "lead_time_days": 7,
        "safety_stock": 20,
        "available": 30,
        "on_order": 10,
    }
    values.update(kw)
    return ReplenishmentInput(**values)  # type: ignore[arg-type]


def test_suggested_quantity_is_the_documented_sum() -> None:
    s = suggest(_inputs())
    assert s.suggested_qty == 51  # ceil(70.4 + 20 - 30 - 10)
    assert "forecast 70.4 over the 7-day lead time" in s.reason
    assert "safety stock 20" in s.reason and "available 30" in s.reason
    assert "on order 10" in s.reason and "order 51" in s.reason


def test_covered_means_zero_with_a_reason() -> None:
    s = suggest(_inputs(available=200))
    assert s.suggested_qty == 0
    assert "covered" in s.reason


def test_negative_available_counts_as_zero() -> None:
    assert suggest(_inputs(available=-5)).suggested_qty == 81


def test_news_is_a_new_or_materially_changed_suggestion() -> None:
    assert is_news(10, None)
    assert is_news(10, 0)
    assert not is_news(0, None)
    assert not is_news(10, 10)
    assert not is_news(11, 10)  # +10 %: the same advice
    assert is_news(12, 10)  # +20 %
    assert is_news(7, 10)


def test_apportion_rounds_up_by_share() -> None:
    assert apportion(10, {"A": 0.75, "B": 0.25}) == {"A": 8, "B": 3}
    assert apportion(10, {"A": 0.0, "B": 0.0}) == {"A": 5, "B": 5}
    assert apportion(10, {}) == {}
