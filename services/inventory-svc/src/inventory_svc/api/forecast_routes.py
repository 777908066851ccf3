"""inventory-svc HTTP API of demand forecasts, the promotions calendar, supply (lead time
and on order), sales-history backfill and purchase (replenishment) suggestions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from inventory_svc import forecasting
from inventory_svc.adapters.forecast_repository import ForecastRepository
from inventory_svc.adapters.stock_repository import StockRepository
from inventory_svc.api.auditing import changed_fields, listed
from inventory_svc.api.forecast_schemas import (
    ForecastOut,
    ForecastPointOut,
    PromotionIn,
    PromotionOut,
    RefreshOut,
    ReplenishmentOut,
    ReplenishmentPage,
    SalesImportIn,
    SalesImportOut,
    SupplyIn,
    SupplyOut,
    UpliftOut,
)
from inventory_svc.api.roles import InventoryAdjuster
from inventory_svc.domain.replenishment import DEFAULT_LEAD_TIME_DAYS
from oms_messaging import UnitOfWork
from oms_servicekit.audit import record_audit
from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem

router = APIRouter()


async def _known_sku(uow: UnitOfWork, sku: str) -> None:
    if await StockRepository(uow.session).get_sku(sku) is None:
        raise Problem(404, f"unknown SKU {sku}")


async def _known_warehouse(uow: UnitOfWork, code: str, field: str) -> None:
    if not await StockRepository(uow.session).warehouse_exists(code):
        raise Problem(422, f"unknown warehouse {code}", field=field)


# -- forecasts ---------------------------------------------------------------------------------


@router.get(
    "/forecast/{sku}",
    response_model=ForecastOut,
    tags=["forecast"],
    responses={404: {"description": "unknown SKU"}},
)
async def get_forecast(
    sku: str,
    runtime: RuntimeDep,
    days: Annotated[int, Query(ge=7, le=forecasting.MAX_API_DAYS)] = 14,
    warehouse: Annotated[str | None, Query(max_length=64)] = None,
) -> ForecastOut:
    """Daily demand forecast with prediction intervals, from the SKU's sales history
    (one warehouse, or all), with the promotions calendar applied."""
    async with runtime.uow() as uow:
        await _known_sku(uow, sku)
        if warehouse:
            await _known_warehouse(uow, warehouse, "warehouse")
    result = await forecasting.get_forecast(runtime.uow, sku, warehouse or "", days)
    forecast = result.forecast
    points = forecast.points[:days]
    return ForecastOut(
        sku=sku,
        warehouse=warehouse or None,
        days=days,
        model=forecast.model,
        note=forecast.note,
        level=forecast.level,
        history_days=forecast.history_days,
        history_end=result.history_end,
        computed_at=result.computed_at,
        cached=result.cached,
        promotion_uplift=(
            UpliftOut(value=forecast.uplift, source=forecast.uplift_source)
            if forecast.uplift is not None and forecast.uplift_source is not None
            else None
        ),
        total=sum(p.mean for p in points),
        points=[
            ForecastPointOut(
                day=p.day,
                mean=p.mean,
                lower=p.lower,
                upper=p.upper,
                promotion_factor=p.promotion_factor,
            )
            for p in points
        ],
    )


@router.post("/forecast/refresh", response_model=RefreshOut, tags=["forecast"])
async def refresh_forecasts(runtime: RuntimeDep, operator: InventoryAdjuster) -> RefreshOut:
    """Run the nightly job now: refit A and B SKUs, renew and announce their suggestions.

    The job commits SKU by SKU (a long refit must not hold one transaction open), so
    its audit row cannot share one: it is written once the job has finished, with what
    it did; a job that fails part way writes none (its refits are only a cache), nor
    does one that found no A or B SKU to refit (it changed nothing)."""
    summary = await forecasting.nightly_refresh(runtime.uow, force=True)
    if summary.forecasts or summary.suggestions:
        async with runtime.uow() as uow:
            await record_audit(
                uow.session,
                actor=operator,
                action="forecast.refresh",
                entity="forecasts",
                entity_id="all",
                after={
                    "forecasts": summary.forecasts,
                    "suggestions": summary.suggestions,
                    "announced": summary.announced,
                },
            )
            await uow.commit()
    return RefreshOut(
        forecasts=summary.forecasts,
        suggestions=summary.suggestions,
        announced=summary.announced,
    )


# -- promotions --------------------------------------------------------------------------------


def _promotion_out(row: dict[str, object]) -> PromotionOut:
    return PromotionOut.model_validate(row)


@router.post("/promotions", status_code=201, response_model=PromotionOut, tags=["forecast"])
async def add_promotion(
    body: PromotionIn, runtime: RuntimeDep, operator: InventoryAdjuster
) -> PromotionOut:
    """Put a promotion in the calendar; the forecasts of its SKUs are refitted on next use."""
    if body.end_date < body.start_date:
        raise Problem(422, "end_date is before start_date", field="end_date")
    skus = sorted(set(body.skus))
    async with runtime.uow() as uow:
        known = await StockRepository(uow.session).known_skus(set(skus))
        for i, sku in enumerate(body.skus):
            if sku not in known:
                raise Problem(422, f"unknown SKU {sku}", field=f"skus.{i}")
        repo = ForecastRepository(uow.session)
        row = await repo.add_promotion(
            {
                "id": uuid.uuid4(),
                "name": body.name,
                "channel": body.channel,
                "skus": skus,
                "start_date": body.start_date,
                "end_date": body.end_date,
                "expected_uplift": body.expected_uplift,
                "created_by": operator,
            }
        )
        await repo.drop_forecasts(skus)
        await record_audit(
            uow.session,
            actor=operator,
            action="promotion.create",
            entity="promotion",
            entity_id=row["id"],
            after={
                "name": body.name,
                "channel": body.channel,
                "start_date": body.start_date,
                "end_date": body.end_date,
                "expected_uplift": body.expected_uplift,
                "sku_count": len(skus),
                "skus": listed(skus),
            },
        )
        await uow.commit()
    return _promotion_out(row)


@router.get("/promotions", response_model=list[PromotionOut], tags=["forecast"])
async def list_promotions(runtime: RuntimeDep, sku: str | None = None) -> list[PromotionOut]:
    async with runtime.uow() as uow:
        rows = await ForecastRepository(uow.session).promotions(sku)
    return [_promotion_out(r) for r in rows]


# -- supply ------------------------------------------------------------------------------------


def _supply_out(sku: str, row: dict[str, object] | None) -> SupplyOut:
    if row is None:
        return SupplyOut(
            sku=sku,
            lead_time_days=DEFAULT_LEAD_TIME_DAYS,
            on_order={},
            updated_by=None,
            updated_at=None,
        )
    return SupplyOut.model_validate(row)


@router.put(
    "/skus/{sku}/supply",
    response_model=SupplyOut,
    tags=["skus"],
    responses={404: {"description": "unknown SKU"}},
)
async def put_supply(
    sku: str, body: SupplyIn, runtime: RuntimeDep, operator: InventoryAdjuster
) -> SupplyOut:
    """Set the SKU's supplier lead time and the units on order per warehouse."""
    for warehouse, qty in body.on_order.items():
        if qty < 0:
            raise Problem(422, "on order must be >= 0", field=f"on_order.{warehouse}")
    async with runtime.uow() as uow:
        await _known_sku(uow, sku)
        for warehouse in body.on_order:
            await _known_warehouse(uow, warehouse, f"on_order.{warehouse}")
        repo = ForecastRepository(uow.session)
        previous = await repo.get_supply(sku)
        row = await repo.put_supply(sku, body.lead_time_days, body.on_order, operator)
        change = changed_fields(previous, row, ("lead_time_days", "on_order"))
        if change is not None:  # the same supply again changes nothing: no row
            await record_audit(
                uow.session,
                actor=operator,
                action="sku.supply.update",
                entity="sku_supply",
                entity_id=sku,
                before=change[0],
                after=change[1],
            )
        await uow.commit()
    return _supply_out(sku, row)


@router.get(
    "/skus/{sku}/supply",
    response_model=SupplyOut,
    tags=["skus"],
    responses={404: {"description": "unknown SKU"}},
)
async def get_supply(sku: str, runtime: RuntimeDep) -> SupplyOut:
    """The SKU's supply (lead time 7 days and nothing on order until set)."""
    async with runtime.uow() as uow:
        await _known_sku(uow, sku)
        row = await ForecastRepository(uow.session).get_supply(sku)
    return _supply_out(sku, row)


# -- sales history backfill --------------------------------------------------------------------


@router.post("/sales-history/import", response_model=SalesImportOut, tags=["forecast"])
async def import_sales(
    body: SalesImportIn, runtime: RuntimeDep, operator: InventoryAdjuster
) -> SalesImportOut:
    """Backfill daily demand (e.g. from the system before this one); the rows' days and
    channels replace what an earlier import said, and the SKUs' forecasts are refitted."""
    seen: set[tuple[str, str, str, object]] = set()
    for i, row in enumerate(body.rows):
        key = (row.sku, row.warehouse, row.channel, row.day)
        if key in seen:
            raise Problem(422, "the same day appears twice", field=f"rows.{i}.day")
        seen.add(key)
    skus = sorted({row.sku for row in body.rows})
    async with runtime.uow() as uow:
        stock_repo = StockRepository(uow.session)
        known = await stock_repo.known_skus(set(skus))
        for i, row in enumerate(body.rows):
            if row.sku not in known:
                raise Problem(422, f"unknown SKU {row.sku}", field=f"rows.{i}.sku")
        for warehouse in sorted({row.warehouse for row in body.rows}):
            if not await stock_repo.warehouse_exists(warehouse):
                i = next(i for i, r in enumerate(body.rows) if r.warehouse == warehouse)
                raise Problem(422, f"unknown warehouse {warehouse}", field=f"rows.{i}.warehouse")
        repo = ForecastRepository(uow.session)
        imported = await repo.import_daily([row.model_dump() for row in body.rows], operator)
        await repo.drop_forecasts(skus)
        await record_audit(
            uow.session,
            actor=operator,
            action="sales_history.import",
            entity="sales_history_import",
            entity_id=uuid.uuid4(),
            after=_import_summary(body, imported, skus),
        )
        await uow.commit()
    return SalesImportOut(imported=imported, skus=skus)


def _import_summary(body: SalesImportIn, imported: int, skus: list[str]) -> dict[str, object]:
    """What a backfill did, in counts (the rows themselves are in the sales history)."""
    days = [row.day for row in body.rows]
    return {
        "rows": imported,
        "sku_count": len(skus),
        "skus": listed(skus),
        "warehouses": listed(sorted({row.warehouse for row in body.rows})),
        "channels": listed(sorted({row.channel for row in body.rows})),
        "first_day": min(days),
        "last_day": max(days),
    }


# -- replenishment -----------------------------------------------------------------------------


@router.get("/replenishment", response_model=ReplenishmentPage, tags=["forecast"])
async def get_replenishment(
    runtime: RuntimeDep,
    warehouse: Annotated[str | None, Query(max_length=64)] = None,
    sku: Annotated[str | None, Query(max_length=64)] = None,
) -> ReplenishmentPage:
    """Suggested purchase quantity per SKU (and warehouse): forecast over the supplier
    lead time + safety stock - available - on order, with that sum as the reason. Most
    needed first. C-class forecasts not cached today are fitted now (can take a while)."""
    async with runtime.uow() as uow:
        if warehouse:
            await _known_warehouse(uow, warehouse, "warehouse")
        if sku:
            await _known_sku(uow, sku)
        pairs = await ForecastRepository(uow.session).stocked_pairs(warehouse or None)
    by_sku: dict[str, list[str]] = {}
    for pair_sku, pair_warehouse in pairs:
        if sku is None or pair_sku == sku:
            by_sku.setdefault(pair_sku, []).append(pair_warehouse)
    items = []
    for item_sku, warehouses in by_sku.items():
        for suggestion, abc in await forecasting.suggestions_for(runtime.uow, item_sku, warehouses):
            inputs = suggestion.inputs
            items.append(
                ReplenishmentOut(
                    sku=suggestion.sku,
                    warehouse=suggestion.warehouse,
                    abc_class=abc,
                    suggested_qty=suggestion.suggested_qty,
                    reason=suggestion.reason,
                    forecast_over_lead_time=inputs.forecast_over_lead_time,
                    lead_time_days=inputs.lead_time_days,
                    safety_stock=inputs.safety_stock,
                    available=inputs.available,
                    on_order=inputs.on_order,
                )
            )
    items.sort(key=lambda item: (-item.suggested_qty, item.sku, item.warehouse))
    return ReplenishmentPage(warehouse=warehouse or None, items=items)
