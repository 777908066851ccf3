"""The pick list a warehouse works from, and what routing knows of the warehouses."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from oms_servicekit.http import RuntimeDep
from oms_servicekit.personal_data import mask_address, scrub
from oms_servicekit.problems import Problem
from order_svc.adapters.repository import OrderRepository
from order_svc.adapters.routing_repository import RoutingRepository
from order_svc.api.roles import ORDERS_READ, SeesPersonalData
from order_svc.api.routing_schemas import (
    CustomerDataOut,
    PickLine,
    PickListOut,
    PickParcel,
    RoutingWarehouseOut,
)

router = APIRouter(tags=["routing"])


@router.get(
    "/orders/{order_id}/picklist",
    response_model=PickListOut,
    responses={404: {"description": "unknown order"}},
)
async def pick_list(order_id: uuid.UUID, runtime: RuntimeDep, pii: SeesPersonalData) -> PickListOut:
    """Lines per warehouse, with the delivery requirements (the order's own and its
    customer's), the customer's tags and the notes; the address and notes masked unless
    the caller holds ``customers:pii`` (the warehouse's label printer does)."""
    async with runtime.uow() as uow:
        view = await OrderRepository(uow.session).view(order_id)
    if view is None:
        raise Problem(404, f"unknown order {order_id}")
    parcels: dict[str | None, list[PickLine]] = {}
    for line in view["lines"]:
        parcels.setdefault(line["warehouse"], []).append(
            PickLine(line_no=line["line_no"], sku=line["sku"], qty=line["qty"])
        )
    own = sorted(set(view["delivery_requirements"] or []))
    customer = sorted(set(view["customer_requirements"]))
    data = view["customer_data"]
    address = view["shipping_address"]
    return PickListOut(
        order_id=view["id"],
        channel=view["channel"],
        channel_order_id=view["channel_order_id"],
        state=view["state"],
        priority=view["priority"],
        parcels=[
            PickParcel(warehouse=wh, lines=lines)
            for wh, lines in sorted(parcels.items(), key=lambda p: (p[0] is None, p[0] or ""))
        ],
        delivery_requirements=sorted(set(own) | set(customer)),
        order_requirements=own,
        customer_requirements=customer,
        tags=sorted(set(view["customer_tags"])),
        notes=view["notes"] if pii else scrub(view["notes"]),
        shipping_address=(address if pii else mask_address(address)) or {},
        customer_data=None if data is None else CustomerDataOut.model_validate(data),
    )


@router.get(
    "/routing/warehouses", response_model=list[RoutingWarehouseOut], dependencies=ORDERS_READ
)
async def routing_warehouses(runtime: RuntimeDep) -> list[RoutingWarehouseOut]:
    """The warehouses routing chooses from, as inventory-svc last announced them."""
    async with runtime.uow() as uow:
        rows = await RoutingRepository(uow.session).warehouse_rows()
    return [RoutingWarehouseOut.model_validate(r) for r in rows]
