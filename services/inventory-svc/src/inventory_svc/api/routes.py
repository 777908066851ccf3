"""inventory-svc HTTP API: warehouses, SKUs and their policies, stock receipts,
adjustments and transfers, stock levels per warehouse and channel, and the ledger."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from inventory_svc.adapters.stock_repository import Change, StockRepository
from inventory_svc.api.auditing import changed_fields, listed, stock_change
from inventory_svc.api.roles import ADJUST_IN_JWT_MODE, CatalogueEditor, InventoryAdjuster
from inventory_svc.api.schemas import (
    AbcOut,
    AdjustmentIn,
    ChannelStock,
    LedgerEntry,
    LedgerPage,
    PolicyIn,
    PolicyOut,
    ReceiptIn,
    SkuIn,
    SkuOut,
    StockOut,
    TransferIn,
    WarehouseIn,
    WarehouseOut,
    WarehouseStock,
    WarehouseUpdate,
)
from inventory_svc.domain.policy import ChannelCap
from inventory_svc.inventory import Inventory, Policy, Refused
from oms_contracts.events import WarehouseUpdated
from oms_messaging import UnitOfWork
from oms_servicekit.audit import record_audit
from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem
from oms_servicekit.runtime import ServiceRuntime

router = APIRouter()


def _refused(exc: Refused) -> Problem:
    return Problem(exc.status, exc.detail, field=exc.field)


# -- warehouses -------------------------------------------------------------------------


def _check_costs(costs: dict[str, Decimal]) -> None:
    for region, cost in costs.items():
        if not region or len(region) > 64:
            raise Problem(422, "invalid region code", field="shipping_costs")
        if cost < 0 or not cost.is_finite():
            raise Problem(
                422, f"shipping cost to {region} must be >= 0", field=f"shipping_costs.{region}"
            )


async def _announce_warehouse(uow: UnitOfWork, values: dict[str, Any]) -> None:
    await uow.emit(
        WarehouseUpdated(
            code=values["code"],
            name=values["name"],
            region=values["region"],
            latitude=values["latitude"],
            longitude=values["longitude"],
            capabilities=list(values["capabilities"] or []),
            shipping_costs={
                k: Decimal(str(v)) for k, v in (values["shipping_costs"] or {}).items()
            },
            updated_at=datetime.now(UTC),
        )
    )


def _warehouse_row(values: dict[str, Any]) -> dict[str, Any]:
    return {
        **values,
        "shipping_costs": {k: str(v) for k, v in values.get("shipping_costs", {}).items()},
    }


@router.post(
    "/warehouses",
    status_code=201,
    response_model=WarehouseOut,
    tags=["warehouses"],
    responses={409: {"description": "a warehouse with this code exists"}},
    dependencies=ADJUST_IN_JWT_MODE,
)
async def add_warehouse(
    body: WarehouseIn, runtime: RuntimeDep, actor: CatalogueEditor
) -> WarehouseOut:
    """Add a warehouse; ``WarehouseUpdated`` tells routing about it."""
    _check_costs(body.shipping_costs)
    values = _warehouse_row(body.model_dump())
    async with runtime.uow() as uow:
        if not await StockRepository(uow.session).add_warehouse(values):
            raise Problem(409, f"warehouse {body.code} already exists", field="code")
        await _announce_warehouse(uow, values)
        await record_audit(
            uow.session,
            actor=actor,
            action="warehouse.create",
            entity="warehouse",
            entity_id=body.code,
            after={field: values[field] for field in WarehouseUpdate.model_fields},
        )
        await uow.commit()
    return WarehouseOut(**body.model_dump())


@router.put(
    "/warehouses/{code}",
    response_model=WarehouseOut,
    tags=["warehouses"],
    responses={404: {"description": "unknown warehouse"}},
    dependencies=ADJUST_IN_JWT_MODE,
)
async def update_warehouse(
    code: str, body: WarehouseUpdate, runtime: RuntimeDep, actor: CatalogueEditor
) -> WarehouseOut:
    """Replace a warehouse's master data; ``WarehouseUpdated`` tells routing about it."""
    _check_costs(body.shipping_costs)
    values = _warehouse_row(body.model_dump())
    async with runtime.uow() as uow:
        repo = StockRepository(uow.session)
        previous = await repo.get_warehouse(code)
        if previous is None or not await repo.update_warehouse(code, values):
            raise Problem(404, f"unknown warehouse {code}")
        await _announce_warehouse(uow, {**values, "code": code})
        change = changed_fields(previous, values, WarehouseUpdate.model_fields)
        if change is not None:
            await record_audit(
                uow.session,
                actor=actor,
                action="warehouse.update",
                entity="warehouse",
                entity_id=code,
                before=change[0],
                after=change[1],
            )
        await uow.commit()
    return WarehouseOut(code=code, **body.model_dump())


@router.get("/warehouses", response_model=list[WarehouseOut], tags=["warehouses"])
async def list_warehouses(runtime: RuntimeDep) -> list[WarehouseOut]:
    async with runtime.uow() as uow:
        rows = await StockRepository(uow.session).list_warehouses()
    return [
        WarehouseOut(
            **{k: r[k] for k in WarehouseOut.model_fields if k != "shipping_costs"},
            shipping_costs=r["shipping_costs"] or {},
        )
        for r in rows
    ]


# -- SKUs and policies --------------------------------------------------------------------


@router.post(
    "/skus",
    status_code=201,
    response_model=SkuOut,
    tags=["skus"],
    responses={409: {"description": "the SKU exists"}},
    dependencies=ADJUST_IN_JWT_MODE,
)
async def add_sku(body: SkuIn, runtime: RuntimeDep, actor: CatalogueEditor) -> SkuOut:
    async with runtime.uow() as uow:
        if not await StockRepository(uow.session).add_sku(body.model_dump()):
            raise Problem(409, f"SKU {body.sku} already exists", field="sku")
        await record_audit(
            uow.session,
            actor=actor,
            action="sku.create",
            entity="sku",
            entity_id=body.sku,
            after={"name": body.name, "attributes": body.attributes},
        )
        await uow.commit()
    return SkuOut(**body.model_dump())


def _parse_cap(channel: str, raw: str | int) -> ChannelCap:
    field = f"channel_caps.{channel}"
    if not channel or len(channel) > 64:
        raise Problem(422, "invalid channel name", field="channel_caps")
    if isinstance(raw, int):
        if raw < 0:
            raise Problem(422, f"cap of {channel} must be >= 0 units", field=field)
        return ChannelCap(units=raw)
    text = raw.strip()
    if not text.endswith("%"):
        raise Problem(422, f"cap of {channel} must be a number or a percentage", field=field)
    try:
        percent = Decimal(text[:-1])
    except InvalidOperation:
        raise Problem(422, f"cap of {channel} is not a percentage", field=field) from None
    if not percent.is_finite() or not Decimal(0) <= percent <= Decimal(100):
        raise Problem(422, f"cap of {channel} must be between 0 % and 100 %", field=field)
    return ChannelCap(percent=percent)


def _cap_out(cap: ChannelCap) -> str | int:
    if cap.units is not None:
        return cap.units
    return f"{cap.percent}%"


async def _policy_out(inventory: Inventory, policy: Policy) -> PolicyOut:
    return PolicyOut(
        sku=policy.sku,
        safety_stock=policy.safety_stock,
        channel_caps={ch: _cap_out(cap) for ch, cap in policy.caps.items()},
        pause_channels=list(policy.pause_channels),
        abc_class=policy.abc_class,
        abc_override=policy.abc_override,
        effective_abc_class=policy.abc,
        low=policy.low,
        channels=await _channels(inventory, policy.sku),
        max_per_customer=policy.max_per_customer,
    )


@router.put(
    "/skus/{sku}/policy",
    response_model=PolicyOut,
    tags=["skus"],
    responses={404: {"description": "unknown SKU"}},
    dependencies=ADJUST_IN_JWT_MODE,
)
async def put_policy(
    sku: str, body: PolicyIn, runtime: RuntimeDep, actor: CatalogueEditor
) -> PolicyOut:
    """Set the SKU's safety stock, channel caps, channels to pause when low, ABC override
    and cap per customer."""
    caps = {ch: _parse_cap(ch, raw) for ch, raw in body.channel_caps.items()}
    for i, channel in enumerate(body.pause_channels):
        if not channel or len(channel) > 64:
            raise Problem(422, "invalid channel name", field=f"pause_channels.{i}")
    async with runtime.uow() as uow:
        inventory = Inventory(uow)
        previous = await inventory.repo.get_policy(sku)
        try:
            policy = await inventory.put_policy(
                sku,
                {
                    "safety_stock": body.safety_stock,
                    "channel_caps": caps,
                    "pause_channels": body.pause_channels,
                    "abc_override": body.abc_override,
                    "max_per_customer": body.max_per_customer,
                },
            )
        except Refused as exc:
            raise _refused(exc) from None
        out = await _policy_out(inventory, policy)
        await _audit_policy(uow, actor, sku, previous)
        await uow.commit()
    return out


async def _audit_policy(
    uow: UnitOfWork, actor: str, sku: str, previous: dict[str, Any] | None
) -> None:
    """One row for the operator-set fields of the policy that changed (none: no row)."""
    current = await StockRepository(uow.session).get_policy(sku) or {}
    change = changed_fields(previous, current, PolicyIn.model_fields)
    if change is not None:
        await record_audit(
            uow.session,
            actor=actor,
            action="sku.policy.update",
            entity="sku_policy",
            entity_id=sku,
            before=change[0],
            after=change[1],
        )


@router.get(
    "/skus/{sku}/policy",
    response_model=PolicyOut,
    tags=["skus"],
    responses={404: {"description": "unknown SKU"}},
)
async def get_policy(sku: str, runtime: RuntimeDep) -> PolicyOut:
    async with runtime.uow() as uow:
        inventory = Inventory(uow)
        if await inventory.repo.get_sku(sku) is None:
            raise Problem(404, f"unknown SKU {sku}")
        return await _policy_out(inventory, await inventory.policy(sku))


@router.post("/abc/recompute", response_model=AbcOut, tags=["skus"])
async def recompute_abc(runtime: RuntimeDep, operator: InventoryAdjuster) -> AbcOut:
    """Recompute every SKU's ABC class from the last 90 days of sales value now."""
    async with runtime.uow() as uow:
        inventory = Inventory(uow)
        before = await _stored_classes(inventory)
        classes = await inventory.recompute_abc(datetime.now(UTC))
        after = await _stored_classes(inventory)
        changed = sorted(sku for sku in after if after[sku] != before.get(sku))
        if changed:  # a recompute that moves no SKU is a repeat: no row
            shown = listed(changed)
            await record_audit(
                uow.session,
                actor=operator,
                action="abc.recompute",
                entity="abc_classes",
                entity_id="all",
                before={"classes": {sku: before.get(sku) for sku in shown}},
                after={"classes": {sku: after[sku] for sku in shown}, "changed": len(changed)},
            )
        await uow.commit()
    return AbcOut(classes=classes)


async def _stored_classes(inventory: Inventory) -> dict[str, str | None]:
    """Every SKU's computed ABC class as stored (None: never computed)."""
    skus = await inventory.repo.all_skus()
    rows = await inventory.repo.policies(skus)
    return {sku: (rows[sku]["abc_class"] if sku in rows else None) for sku in skus}


# -- stock ----------------------------------------------------------------------------------


async def _move_stock(
    runtime: ServiceRuntime,
    sku: str,
    move: Callable[[Inventory], Awaitable[object]],
    *,
    actor: str,
    action: str,
    on_hand_deltas: dict[str, int],
) -> StockOut:
    """Apply one stock movement and answer the SKU's stock after it, in one transaction
    with its audit row (on hand, reserved, available of each warehouse touched); a
    refused movement (4xx) changes nothing and leaves no row."""
    async with runtime.uow() as uow:
        inventory = Inventory(uow)
        try:
            await move(inventory)
        except Refused as exc:
            raise _refused(exc) from None
        out = await _stock_of(inventory, sku)
        before, after = stock_change(out.warehouses, on_hand_deltas)
        await record_audit(
            uow.session,
            actor=actor,
            action=action,
            entity="stock",
            entity_id=sku,
            before=before,
            after=after,
        )
        await uow.commit()
        return out


@router.post("/stock/receipts", status_code=201, response_model=StockOut, tags=["stock"])
async def receive_stock(
    body: ReceiptIn, operator: InventoryAdjuster, runtime: RuntimeDep
) -> StockOut:
    """Goods arrived at a warehouse: on hand goes up, with a ledger row naming the operator."""
    change = Change(kind="receipt", reason=body.reason, operator=operator)
    return await _move_stock(
        runtime,
        body.sku,
        lambda inv: inv.receive(body.sku, body.warehouse, body.qty, change),
        actor=operator,
        action="stock.receipt",
        on_hand_deltas={body.warehouse: body.qty},
    )


@router.post(
    "/stock/adjustments",
    status_code=201,
    response_model=StockOut,
    tags=["stock"],
    responses={409: {"description": "on hand would fall below zero or below reserved"}},
)
async def adjust_stock(
    body: AdjustmentIn, operator: InventoryAdjuster, runtime: RuntimeDep
) -> StockOut:
    """Correct on hand (damage, loss, found, cycle count): all of it or nothing."""
    change = Change(kind=body.kind, reason=body.reason, operator=operator)
    return await _move_stock(
        runtime,
        body.sku,
        lambda inv: inv.adjust(body.sku, body.warehouse, body.delta, change),
        actor=operator,
        action=f"stock.{body.kind}",
        on_hand_deltas={body.warehouse: body.delta},
    )


@router.post(
    "/stock/transfers",
    status_code=201,
    response_model=StockOut,
    tags=["stock"],
    responses={409: {"description": "not enough free stock at the source"}},
)
async def transfer_stock(
    body: TransferIn, operator: InventoryAdjuster, runtime: RuntimeDep
) -> StockOut:
    """Move free units between warehouses: two ledger rows, one transaction."""
    change = Change(kind="transfer", reason=body.reason, operator=operator)
    return await _move_stock(
        runtime,
        body.sku,
        lambda inv: inv.transfer(body.sku, body.from_, body.to, body.qty, change),
        actor=operator,
        action="stock.transfer",
        on_hand_deltas={body.from_: -body.qty, body.to: body.qty},
    )


@router.get(
    "/stock/{sku}",
    response_model=StockOut,
    tags=["stock"],
    responses={404: {"description": "unknown SKU"}},
)
async def get_stock(sku: str, runtime: RuntimeDep, response: Response) -> StockOut:
    async with runtime.uow() as uow:
        inventory = Inventory(uow)
        if await inventory.repo.get_sku(sku) is None:
            raise Problem(status.HTTP_404_NOT_FOUND, f"unknown SKU {sku}")
        return await _stock_of(inventory, sku)


async def _channels(inventory: Inventory, sku: str) -> list[ChannelStock]:
    atp = await inventory.channel_availability(sku)
    usage = await inventory.channel_usage(sku)
    out = []
    for channel, value in atp.items():
        u = usage.get(channel)
        out.append(
            ChannelStock(
                channel=channel,
                available_to_sell=value,
                reserved=u.reserved if u else 0,
                shipped=u.shipped if u else 0,
                cap_units=u.cap_units if u else None,
                paused=u.paused if u else False,
            )
        )
    return out


async def _stock_of(inventory: Inventory, sku: str) -> StockOut:
    levels = await inventory.repo.levels(sku)
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
        channels=await _channels(inventory, sku),
    )


# -- ledger -----------------------------------------------------------------------------------


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not text.startswith("id:"):
            raise ValueError(text)
        return int(text[3:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(422, "invalid cursor", field="cursor") from None


@router.get("/ledger", response_model=LedgerPage, tags=["stock"])
async def get_ledger(
    runtime: RuntimeDep,
    sku: str | None = None,
    warehouse: str | None = None,
    reason: str | None = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> LedgerPage:
    """Every stock change, oldest first, paged by id (``next_cursor``)."""
    if from_ is not None and to is not None and to < from_:
        raise Problem(422, "'to' is before 'from'", field="to")
    after = _decode_cursor(cursor) if cursor else None
    async with runtime.uow() as uow:
        rows = await StockRepository(uow.session).ledger_page(
            sku=sku,
            warehouse=warehouse,
            reason=reason,
            start=from_,
            end=to,
            after_id=after,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return LedgerPage(
        items=[
            LedgerEntry(**{**r, "order_id": str(r["order_id"]) if r["order_id"] else None})
            for r in rows
        ],
        next_cursor=_encode_cursor(rows[-1]["id"]) if more else None,
    )
