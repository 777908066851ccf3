"""Answers of inventory-svc to a reservation request, keyed by order id."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from oms_contracts.envelope import Event
from oms_contracts.owners import INVENTORY_SVC

#: Why a line was refused. ``customer_limit``: the buyer would pass the SKU's cap per
#: customer (a flash-sale policy); ``available`` is then what this buyer may still take.
RejectionReason = Literal[
    "insufficient", "channel_cap", "channel_paused", "unknown_sku", "customer_limit"
]


class ReservedLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_no: int
    sku: str
    qty: int
    warehouse: str


class RejectedLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_no: int
    sku: str
    qty: int
    reason: RejectionReason
    available: int | None = None


class StockReserved(Event):
    event_type: ClassVar[str] = "StockReserved"
    owner: ClassVar[str] = INVENTORY_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    lines: list[ReservedLine]
    reserved_at: datetime


class StockRejected(Event):
    """No line was reserved; ``lines`` says why for each line that could not be."""

    event_type: ClassVar[str] = "StockRejected"
    owner: ClassVar[str] = INVENTORY_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    lines: list[RejectedLine]
    rejected_at: datetime


class StockReleased(Event):
    """Stock held for an order went back to the pool (cancelled, or the hold expired)."""

    event_type: ClassVar[str] = "StockReleased"
    owner: ClassVar[str] = INVENTORY_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    lines: list[ReservedLine]
    reason: Literal["cancelled", "expired", "operator"]
    released_at: datetime


class StockLevelChanged(Event):
    """The stock of one SKU in one warehouse after a change (for projections, routing)."""

    event_type: ClassVar[str] = "StockLevelChanged"
    owner: ClassVar[str] = INVENTORY_SVC
    key_field: ClassVar[str] = "sku"

    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    available: int
    changed_at: datetime


class StockLow(Event):
    """Available stock of a SKU crossed below its safety stock (raised once per crossing)."""

    event_type: ClassVar[str] = "StockLow"
    owner: ClassVar[str] = INVENTORY_SVC
    key_field: ClassVar[str] = "sku"

    sku: str
    available: int
    safety_stock: int
    warehouse: str | None = None
    raised_at: datetime


class ChannelSalesPaused(Event):
    event_type: ClassVar[str] = "ChannelSalesPaused"
    owner: ClassVar[str] = INVENTORY_SVC
    key_field: ClassVar[str] = "sku"

    sku: str
    channel: str
    reason: str
    paused_at: datetime


class ChannelSalesResumed(Event):
    event_type: ClassVar[str] = "ChannelSalesResumed"
    owner: ClassVar[str] = INVENTORY_SVC
    key_field: ClassVar[str] = "sku"

    sku: str
    channel: str
    reason: str
    resumed_at: datetime


class ChannelStockLevel(Event):
    """Available-to-sell of a SKU on one channel (caps and pauses applied), for sync-out."""

    event_type: ClassVar[str] = "ChannelStockLevel"
    owner: ClassVar[str] = INVENTORY_SVC
    key_field: ClassVar[str] = "sku"

    sku: str
    channel: str
    available_to_sell: int
    abc_class: Literal["A", "B", "C"]
    as_of: datetime


class WarehouseUpdated(Event):
    """A warehouse's master data (location, capabilities, shipping costs), for routing."""

    event_type: ClassVar[str] = "WarehouseUpdated"
    owner: ClassVar[str] = INVENTORY_SVC
    key_field: ClassVar[str] = "code"

    code: str
    name: str
    region: str
    latitude: float
    longitude: float
    capabilities: list[str] = []
    #: Shipping cost per parcel by destination region code.
    shipping_costs: dict[str, Decimal] = {}
    updated_at: datetime


class ReplenishmentSuggested(Event):
    """A purchase suggestion for a SKU in a warehouse (raised for A-class SKUs)."""

    event_type: ClassVar[str] = "ReplenishmentSuggested"
    owner: ClassVar[str] = INVENTORY_SVC
    key_field: ClassVar[str] = "sku"

    sku: str
    warehouse: str
    suggested_qty: int
    abc_class: Literal["A", "B", "C"]
    forecast_over_lead_time: float
    safety_stock: int
    available: int
    on_order: int
    lead_time_days: int
    reason: str
    suggested_at: datetime
