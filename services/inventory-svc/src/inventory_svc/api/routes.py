"""inventory-svc HTTP API: warehouses, SKUs, stock receipts and stock levels."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from inventory_svc.adapters.stock_repository import Change, StockRepository
from inventory_svc.api.schemas import (
    ReceiptIn,
    SkuIn,
    SkuOut,
    StockOut,
    WarehouseIn,
    WarehouseOut,
    WarehouseStock,
)
from oms_servicekit.http import OperatorDep, RuntimeDep
from oms_servicekit.problems import Problem

router = APIRouter()


@router.post(
    "/warehouses",
    status_code=201,
    response_model=WarehouseOut,
    tags=["warehouses"],
    responses={409: {"description": "a warehouse with this code exists"}},
)
async def add_warehouse(body: WarehouseIn, runtime: RuntimeDep) -> WarehouseOut:
    async with runtime.uow() as uow:
        if not await StockRepository(uow.session).add_warehouse(body.model_dump()):
            raise Problem(409, f"warehouse {body.code} already exists", field="code")
        await uow.commit()
    return WarehouseOut(**body.model_dump())


@router.get("/warehouses", response_model=list[WarehouseOut], tags=["warehouses"])
async def list_warehouses(runtime: RuntimeDep) -> list[WarehouseOut]:
    async with runtime.uow() as uow:
        rows = await StockRepository(uow.session).list_warehouses()
    return [WarehouseOut(**{k: r[k] for k in WarehouseOut.model_fields}) for r in rows]


@router.post(
    "/skus",
    status_code=201,
    response_model=SkuOut,
    tags=["skus"],
    responses={409: {"description": "the SKU exists"}},
)
async def add_sku(body: SkuIn, runtime: RuntimeDep) -> SkuOut:
    async with runtime.uow() as uow:
        if not await StockRepository(uow.session).add_sku(body.model_dump()):
            raise Problem(409, f"SKU {body.sku} already exists", field="sku")
        await uow.commit()
    return SkuOut(**body.model_dump())


@router.post("/stock/receipts", status_code=201, response_model=StockOut, tags=["stock"])
async def receive_stock(body: ReceiptIn, operator: OperatorDep, runtime: RuntimeDep) -> StockOut:
    """Goods arrived at a warehouse: on hand goes up, with a ledger row naming the operator."""
    async with runtime.uow() as uow:
        repo = StockRepository(uow.session)
        if await repo.get_sku(body.sku) is None:
            raise Problem(422, f"unknown SKU {body.sku}", field="sku")
        if not await repo.warehouse_exists(body.warehouse):
            raise Problem(422, f"unknown warehouse {body.warehouse}", field="warehouse")
        await repo.receive(
            body.sku,
            body.warehouse,
            body.qty,
            Change(kind="receipt", reason=body.reason, operator=operator),
        )
        await uow.commit()
        return await _stock_of(repo, body.sku)


@router.get(
    "/stock/{sku}",
    response_model=StockOut,
    tags=["stock"],
    responses={404: {"description": "unknown SKU"}},
)
async def get_stock(sku: str, runtime: RuntimeDep, response: Response) -> StockOut:
    async with runtime.uow() as uow:
        repo = StockRepository(uow.session)
        if await repo.get_sku(sku) is None:
            raise Problem(status.HTTP_404_NOT_FOUND, f"unknown SKU {sku}")
        return await _stock_of(repo, sku)


async def _stock_of(repo: StockRepository, sku: str) -> StockOut:
    levels = await repo.levels(sku)
    return StockOut(
        sku=sku,
        on_hand=sum(lv.on_hand for lv in levels),
        reserved=sum(lv.reserved for lv in levels),
        available=sum(lv.available for lv in levels),
        warehouses=[
            WarehouseStock(
                warehouse=lv.warehouse,
                on_hand=lv.on_hand,
                reserved=lv.reserved,
                available=lv.available,
            )
            for lv in levels
        ],
    )
