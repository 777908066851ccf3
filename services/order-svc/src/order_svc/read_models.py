"""What order-svc keeps of other services' data, fed by their events.

Warehouses (``WarehouseUpdated``) and stock per SKU and warehouse (``StockLevelChanged``)
for routing; customer profiles (``CustomerUpdated``: delivery requirements and tags) and
the channel identity -> customer map (``CustomerResolved``) so a known buyer's next
order carries the customer's requirements from its receipt, before it is routed. The
customer's data is copied onto every open order of the customer (with its source and
time), which is what the pick list shows. ``CustomerMerged``: orders, identities and
the profile follow the surviving id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from oms_contracts import Envelope, Event
from oms_contracts.events import (
    CustomerMerged,
    CustomerUpdated,
    StockLevelChanged,
    WarehouseUpdated,
)
from oms_messaging import UnitOfWork
from order_svc.adapters.routing_repository import WAREHOUSES_KEY, RoutingRepository


async def on_warehouse_updated(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, WarehouseUpdated)
    uow.forget(WAREHOUSES_KEY)  # later orders of this batch route on the new data
    await RoutingRepository(uow.session).upsert_warehouse(
        {
            "code": event.code,
            "name": event.name,
            "region": event.region,
            "latitude": event.latitude,
            "longitude": event.longitude,
            "capabilities": sorted(set(event.capabilities)),
            "shipping_costs": {k: str(v) for k, v in event.shipping_costs.items()},
            "updated_at": event.updated_at,
        }
    )


async def on_stock_level_changed(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, StockLevelChanged)
    await RoutingRepository(uow.session).upsert_stock(
        event.sku, event.warehouse, event.on_hand, event.reserved, event.available, event.changed_at
    )


async def on_customer_updated(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    """Store the profile, then copy it onto every open order of the customer."""
    assert isinstance(event, CustomerUpdated)
    repo = RoutingRepository(uow.session)
    stored = await repo.upsert_profile(
        event.customer_id,
        sorted(set(event.delivery_requirements)),
        sorted(set(event.tags)),
        event.updated_at,
    )
    if stored:
        await copy_profile_to_open_orders(uow, event.customer_id, "updated")


async def on_customer_merged(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, CustomerMerged)
    repo = RoutingRepository(uow.session)
    await repo.merge_customer(event.merged_id, event.surviving_id, event.merged_at)
    await copy_profile_to_open_orders(uow, event.surviving_id, "merged")


async def copy_profile_to_open_orders(uow: UnitOfWork, customer_id: uuid.UUID, source: str) -> int:
    repo = RoutingRepository(uow.session)
    profile = await repo.profile(customer_id)
    if profile is None or profile["merged_into"] is not None:
        return 0
    now = datetime.now(UTC)
    order_ids = await repo.open_orders_of(customer_id)
    for order_id in order_ids:
        await repo.copy_to_order(order_id, customer_id, profile, source, now)
    return len(order_ids)


async def profile_at_receipt(
    uow: UnitOfWork, order_id: uuid.UUID, channel: str, platform_user_id: str
) -> list[str]:
    """A buyer already resolved on this channel: copy the customer's profile onto the new
    order now, and return the customer's delivery requirements (for routing)."""
    repo = RoutingRepository(uow.session)
    customer_id = await repo.customer_of(channel, platform_user_id)
    if customer_id is None:
        return []
    profile = await repo.profile(customer_id)
    if profile is None:
        return []
    await repo.copy_to_order(order_id, customer_id, profile, "receipt", datetime.now(UTC))
    return list(profile["delivery_requirements"] or [])


async def customer_resolved(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    order_open: bool,
    channel: str,
    platform_user_id: str,
    customer_id: uuid.UUID,
    at: datetime,
) -> None:
    """Remember who the buyer is on this channel; copy the profile onto the order."""
    await RoutingRepository(uow.session).link_identity(channel, platform_user_id, customer_id, at)
    if order_open:
        await copy_resolved_profile(uow, order_id, customer_id)


async def copy_resolved_profile(
    uow: UnitOfWork, order_id: uuid.UUID, customer_id: uuid.UUID
) -> None:
    """The order's buyer is ``customer_id``: copy the profile of the customer they live on
    (merges followed) onto the order, if there is one."""
    repo = RoutingRepository(uow.session)
    surviving = await repo.surviving(customer_id)
    profile = await repo.profile(surviving)
    if profile is not None:
        await repo.copy_to_order(order_id, surviving, profile, "resolved", datetime.now(UTC))
