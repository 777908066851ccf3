"""Request and response bodies of the forecast, promotions, supply and replenishment API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from inventory_svc.api.schemas import Code, Strict


class ForecastPointOut(BaseModel):
    day: date
    #: Expected units sold that day.
    mean: float
    #: The prediction interval (``level``) around it.
    lower: float
    upper: float
    #: The promotion multiplier applied to the day (1.0: none).
    promotion_factor: float


class UpliftOut(BaseModel):
    value: float
    #: ``learned`` from past promotion days in the history, else the calendar's ``expected``.
    source: Literal["learned", "expected"]


class ForecastOut(BaseModel):
    sku: str
    #: None: every warehouse together.
    warehouse: str | None
    days: int
    #: ``ets_additive_damped_trend_weekly``, or a fallback: ``seasonal_naive``,
    #: ``moving_average``, ``no_history``.
    model: str
    #: Why a fallback was used (None when the model was).
    note: str | None
    #: The prediction intervals' coverage (0.9: 90 %).
    level: float
    history_days: int
    #: The last day of history the forecast was made from (yesterday, UTC).
    history_end: date
    computed_at: datetime
    #: Served from the cache (refreshed nightly for A and B SKUs) rather than fitted now.
    cached: bool
    promotion_uplift: UpliftOut | None
    #: Expected units over the ``days`` days.
    total: float
    points: list[ForecastPointOut]


class PromotionIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    #: The channel promoted; None: every channel.
    channel: str | None = Field(default=None, min_length=1, max_length=64)
    skus: list[str] = Field(min_length=1, max_length=1000)
    start_date: date
    end_date: date
    #: The expected multiplier of the channel's demand (1.5 = +50 %); > 0.
    expected_uplift: Decimal = Field(gt=0, le=100, max_digits=8, decimal_places=3)


class PromotionOut(BaseModel):
    id: uuid.UUID
    name: str
    channel: str | None
    skus: list[str]
    start_date: date
    end_date: date
    expected_uplift: Decimal
    created_by: str
    created_at: datetime


class SupplyIn(Strict):
    #: Days from placing a purchase order to the goods being on hand.
    lead_time_days: int = Field(default=7, ge=1, le=365)
    #: Units ordered from the supplier and not yet received, per warehouse.
    on_order: dict[str, int] = Field(default_factory=dict, max_length=500)


class SupplyOut(BaseModel):
    sku: str
    lead_time_days: int
    on_order: dict[str, int]
    #: Who set it last (None: the defaults, never set).
    updated_by: str | None
    updated_at: datetime | None


class SalesRowIn(Strict):
    sku: str = Code
    warehouse: str = Code
    channel: str = Field(min_length=1, max_length=64)
    day: date
    qty: int = Field(ge=0, le=10_000_000)


class SalesImportIn(Strict):
    #: Daily demand to set (a later import of the same day and channel replaces it).
    rows: list[SalesRowIn] = Field(min_length=1, max_length=20_000)


class SalesImportOut(BaseModel):
    imported: int
    skus: list[str]


class ReplenishmentOut(BaseModel):
    sku: str
    warehouse: str
    abc_class: Literal["A", "B", "C"]
    #: Units to order now (0: covered).
    suggested_qty: int
    #: The sum that gives it.
    reason: str
    forecast_over_lead_time: float
    lead_time_days: int
    safety_stock: int
    available: int
    on_order: int


class ReplenishmentPage(BaseModel):
    warehouse: str | None
    items: list[ReplenishmentOut]


class RefreshOut(BaseModel):
    forecasts: int
    suggestions: int
    announced: int
