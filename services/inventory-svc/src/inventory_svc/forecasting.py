"""The forecast and replenishment use cases: recording demand, forecasting a SKU (cached,
or computed on demand), suggesting purchase quantities, and the nightly refresh.

Demand is counted at payment: the units *reserved* for an OrderPaid, on the day it was
paid, and taken back when the order is cancelled. Why payment rather than shipment: the
forecast is of demand, and payment is when the customer wants the goods; shipment dates
carry the warehouse's own delays and backlogs (a slow week of picking is not a slow week
of sales). Recorded in the consumer's unit of work, after the reservation, so the inbox
that dedupes the event dedupes the count too; a repeated OrderPaid adds nothing (one row
per order line). Rejected lines (no stock) are not counted: the history is what sold,
so a long stock-out under-forecasts (a known limit: demand is censored by stock-outs).

Fitting is CPU work of about a second: it runs in a worker thread
(``asyncio.to_thread``) *outside* any transaction (inputs are read in one unit of work,
the result stored in another), so neither the event loop nor a database connection waits
for it. Forecasts are cached per (SKU, warehouse) with the day their history ends: a
cached forecast is fresh while its history ends yesterday (UTC). The periodic job keeps
A and B SKUs fresh; C SKUs are computed when asked.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from inventory_svc.adapters.forecast_repository import ForecastRepository, SoldLine
from inventory_svc.adapters.stock_repository import StockRepository
from inventory_svc.domain.forecast import (
    MAX_FIT_DAYS,
    Forecast,
    ForecastPoint,
    PromotionWindow,
    forecast_demand,
)
from inventory_svc.domain.policy import AbcClass
from inventory_svc.domain.replenishment import (
    DEFAULT_LEAD_TIME_DAYS,
    ReplenishmentInput,
    Suggestion,
    apportion,
    is_news,
    suggest,
)
from inventory_svc.inventory import Policy
from oms_contracts.events import OrderPaid, ReplenishmentSuggested
from oms_messaging import UnitOfWork

log = logging.getLogger(__name__)

UowFactory = Callable[[], UnitOfWork]

#: The longest forecast the API serves (``days`` is 7..30).
MAX_API_DAYS = 30
#: Channel and warehouse shares of demand are taken over this much recent history.
SHARE_WINDOW = timedelta(days=90)
#: The key of a forecast over every warehouse together.
ALL_WAREHOUSES = ""


# -- recording demand (in the consumer's unit of work) ---------------------------------------


async def record_paid_order(uow: UnitOfWork, event: OrderPaid) -> int:
    """Count the units reserved for a paid order on its payment day (once)."""
    reserved = await StockRepository(uow.session).reservations_of(event.order_id)
    lines = [SoldLine(r["line_no"], r["sku"], r["warehouse"], r["qty"]) for r in reserved]
    return await ForecastRepository(uow.session).record_sale(
        event.order_id, event.channel, event.paid_at.astimezone(UTC).date(), lines
    )


async def record_cancelled_order(uow: UnitOfWork, order_id: uuid.UUID) -> int:
    """A cancelled order's units no longer count as demand."""
    return await ForecastRepository(uow.session).cancel_sale(order_id)


# -- forecasting -------------------------------------------------------------------------------


def today_utc(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(UTC).date()


@dataclass(frozen=True)
class ForecastInputs:
    sku: str
    warehouse: str
    history: tuple[float, ...]
    history_end: date
    horizon: int
    promotions: tuple[PromotionWindow, ...]


async def lead_time_days(repo: ForecastRepository, sku: str) -> int:
    supply = await repo.get_supply(sku)
    return int(supply["lead_time_days"]) if supply else DEFAULT_LEAD_TIME_DAYS


async def load_inputs(uow: UnitOfWork, sku: str, warehouse: str, today: date) -> ForecastInputs:
    """What a forecast of ``sku`` (one warehouse, or all: ``""``) made today needs."""
    repo = ForecastRepository(uow.session)
    scope = warehouse or None
    end = today - timedelta(days=1)
    first = await repo.first_sale_day(sku, scope)
    start = max(first, end - timedelta(days=MAX_FIT_DAYS - 1)) if first else today
    daily = await repo.daily_demand(sku, scope, start, end)
    history = tuple(
        float(daily.get(start + timedelta(days=i), 0)) for i in range((end - start).days + 1)
    )
    horizon = max(MAX_API_DAYS, await lead_time_days(repo, sku))
    shares = await repo.demand_shares(sku, scope, end - SHARE_WINDOW, "channel")
    windows = []
    for promo in await repo.promotions(sku, since=start, until=end + timedelta(days=horizon)):
        share = 1.0 if promo["channel"] is None else shares.get(promo["channel"], 0.0)
        if share > 0:  # a channel that never sold the SKU: nothing for it to lift
            windows.append(
                PromotionWindow(
                    promo["start_date"], promo["end_date"], float(promo["expected_uplift"]), share
                )
            )
    return ForecastInputs(sku, warehouse, history, end, horizon, tuple(windows))


def compute(inputs: ForecastInputs) -> Forecast:
    """The CPU part (call it in a thread)."""
    return forecast_demand(inputs.history, inputs.history_end, inputs.horizon, inputs.promotions)


def _to_row(inputs: ForecastInputs, forecast: Forecast, now: datetime) -> dict[str, Any]:
    return {
        "sku": inputs.sku,
        "warehouse": inputs.warehouse,
        "model": forecast.model,
        "note": forecast.note,
        "level": forecast.level,
        "history_days": forecast.history_days,
        "history_end": inputs.history_end,
        "uplift": forecast.uplift,
        "uplift_source": forecast.uplift_source,
        "points": [
            {
                "day": p.day.isoformat(),
                "mean": p.mean,
                "lower": p.lower,
                "upper": p.upper,
                "promotion_factor": p.promotion_factor,
            }
            for p in forecast.points
        ],
        "computed_at": now,
    }


def _from_row(row: dict[str, Any]) -> Forecast:
    return Forecast(
        model=row["model"],
        points=tuple(
            ForecastPoint(
                day=date.fromisoformat(p["day"]),
                mean=p["mean"],
                lower=p["lower"],
                upper=p["upper"],
                promotion_factor=p["promotion_factor"],
            )
            for p in row["points"]
        ),
        history_days=row["history_days"],
        level=row["level"],
        note=row["note"],
        uplift=row["uplift"],
        uplift_source=row["uplift_source"],
    )


@dataclass(frozen=True)
class CachedForecast:
    forecast: Forecast
    history_end: date
    computed_at: datetime
    cached: bool


async def refresh_forecast(
    uow_factory: UowFactory,
    sku: str,
    warehouse: str,
    now: datetime | None = None,
    *,
    also_as: tuple[str, ...] = (),
) -> CachedForecast:
    """Fit now (off the event loop, outside any transaction) and store the result (also
    under the keys ``also_as``: a SKU in one warehouse has the same forecast for all)."""
    now = now or datetime.now(UTC)
    async with uow_factory() as uow:
        inputs = await load_inputs(uow, sku, warehouse, today_utc(now))
    forecast = await asyncio.to_thread(compute, inputs)
    async with uow_factory() as uow:
        repo = ForecastRepository(uow.session)
        for key in (warehouse, *also_as):
            await repo.put_forecast(_to_row(replace(inputs, warehouse=key), forecast, now))
        await uow.commit()
    return CachedForecast(forecast, inputs.history_end, now, cached=False)


async def get_forecast(
    uow_factory: UowFactory, sku: str, warehouse: str, days: int, now: datetime | None = None
) -> CachedForecast:
    """The cached forecast if it is today's and long enough, else a fresh one."""
    now = now or datetime.now(UTC)
    async with uow_factory() as uow:
        row = await ForecastRepository(uow.session).get_forecast(sku, warehouse)
    if (
        row is not None
        and row["history_end"] == today_utc(now) - timedelta(days=1)
        and len(row["points"]) >= days
    ):
        return CachedForecast(_from_row(row), row["history_end"], row["computed_at"], cached=True)
    return await refresh_forecast(uow_factory, sku, warehouse, now)


# -- replenishment -----------------------------------------------------------------------------


async def suggestions_for(
    uow_factory: UowFactory, sku: str, warehouses: list[str], now: datetime | None = None
) -> list[tuple[Suggestion, AbcClass]]:
    """The purchase suggestion of ``sku`` in each of ``warehouses``."""
    now = now or datetime.now(UTC)
    today = today_utc(now)
    async with uow_factory() as uow:
        repo = ForecastRepository(uow.session)
        policy = Policy.from_row(sku, await StockRepository(uow.session).get_policy(sku))
        supply = await repo.get_supply(sku)
        available = await repo.available_by_warehouse(sku)
        all_warehouses = sorted(await repo.sku_warehouses(sku))
        shares = await repo.demand_shares(sku, None, today - SHARE_WINDOW, "warehouse")
    lead = int(supply["lead_time_days"]) if supply else DEFAULT_LEAD_TIME_DAYS
    on_order: dict[str, int] = dict(supply["on_order"]) if supply else {}
    # The SKU's safety stock is SKU-wide: each warehouse keeps its share of demand of it.
    safety = apportion(policy.safety_stock, {wh: shares.get(wh, 0.0) for wh in all_warehouses})
    out = []
    for warehouse in warehouses:
        cached = await get_forecast(uow_factory, sku, warehouse, lead, now)
        suggestion = suggest(
            ReplenishmentInput(
                sku=sku,
                warehouse=warehouse,
                forecast_over_lead_time=cached.forecast.total(lead),
                lead_time_days=lead,
                safety_stock=safety.get(warehouse, policy.safety_stock),
                available=available.get(warehouse, 0),
                on_order=int(on_order.get(warehouse, 0)),
            )
        )
        out.append((suggestion, policy.abc))
    return out


async def store_suggestion(
    uow: UnitOfWork, suggestion: Suggestion, abc: AbcClass, now: datetime
) -> bool:
    """Keep the suggestion; announce it (A class) when it is new or changed materially.

    In one unit of work: the row that remembers what was announced and the event, so a
    crash between them can neither lose nor repeat an announcement. True if announced.
    """
    repo = ForecastRepository(uow.session)
    previous = await repo.lock_suggestion(suggestion.sku, suggestion.warehouse)
    announced_qty = previous["announced_qty"] if previous else None
    announced_at = previous["announced_at"] if previous else None
    announce = abc == "A" and is_news(suggestion.suggested_qty, announced_qty)
    if announce:
        inputs = suggestion.inputs
        await uow.emit(
            ReplenishmentSuggested(
                sku=suggestion.sku,
                warehouse=suggestion.warehouse,
                suggested_qty=suggestion.suggested_qty,
                abc_class=abc,
                forecast_over_lead_time=round(inputs.forecast_over_lead_time, 3),
                safety_stock=inputs.safety_stock,
                available=inputs.available,
                on_order=inputs.on_order,
                lead_time_days=inputs.lead_time_days,
                reason=suggestion.reason,
                suggested_at=now,
            )
        )
        announced_qty, announced_at = suggestion.suggested_qty, now
    elif suggestion.suggested_qty == 0:
        announced_qty = None  # covered again: the next shortfall is news
    await repo.put_suggestion(
        {
            "sku": suggestion.sku,
            "warehouse": suggestion.warehouse,
            "suggested_qty": suggestion.suggested_qty,
            "reason": suggestion.reason,
            "abc_class": abc,
            "computed_at": now,
            "announced_qty": announced_qty,
            "announced_at": announced_at,
        }
    )
    return announce


@dataclass
class RefreshSummary:
    forecasts: int = 0
    suggestions: int = 0
    announced: int = 0


async def nightly_refresh(
    uow_factory: UowFactory, now: datetime | None = None, *, force: bool = False
) -> RefreshSummary:
    """Refit the forecasts of A and B SKUs whose cache predates yesterday's sales (all of
    them with ``force``), then renew their suggestions, announcing A-class news.

    The job runs more often than nightly (``forecast_refresh_interval_s``) but only does
    work once a day has closed: a restart or a missed night catches up, a second run the
    same day finds everything fresh.
    """
    now = now or datetime.now(UTC)
    yesterday = today_utc(now) - timedelta(days=1)
    async with uow_factory() as uow:
        stock_repo = StockRepository(uow.session)
        skus = await stock_repo.skus_in_class("A") + await stock_repo.skus_in_class("B")
    summary = RefreshSummary()
    for sku in sorted(skus):
        async with uow_factory() as uow:
            repo = ForecastRepository(uow.session)
            warehouses = sorted(await repo.sku_warehouses(sku))
            stale = force
            for warehouse in [ALL_WAREHOUSES, *warehouses]:
                row = await repo.get_forecast(sku, warehouse)
                stale = stale or row is None or row["history_end"] < yesterday
        if not stale:
            continue
        if len(warehouses) == 1:  # one warehouse: its forecast is the SKU's, fitted once
            await refresh_forecast(uow_factory, sku, warehouses[0], now, also_as=(ALL_WAREHOUSES,))
            summary.forecasts += 1
        else:
            for warehouse in [ALL_WAREHOUSES, *warehouses]:
                await refresh_forecast(uow_factory, sku, warehouse, now)
                summary.forecasts += 1
        for suggestion, abc in await suggestions_for(uow_factory, sku, warehouses, now):
            async with uow_factory() as uow:
                if await store_suggestion(uow, suggestion, abc, now):
                    summary.announced += 1
                await uow.commit()
            summary.suggestions += 1
    log.info(
        "forecasts refreshed",
        extra={
            "forecasts": summary.forecasts,
            "suggestions": summary.suggestions,
            "announced": summary.announced,
        },
    )
    return summary
