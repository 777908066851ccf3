"""Request and response bodies of inventory-svc's API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Code = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WarehouseIn(Strict):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    region: str = Field(min_length=1, max_length=64)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    capabilities: list[str] = Field(default_factory=list, max_length=32)
    #: Shipping cost per parcel by destination region.
    shipping_costs: dict[str, Decimal] = Field(default_factory=dict, max_length=500)


class WarehouseUpdate(Strict):
    name: str = Field(min_length=1, max_length=200)
    region: str = Field(min_length=1, max_length=64)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    capabilities: list[str] = Field(default_factory=list, max_length=32)
    shipping_costs: dict[str, Decimal] = Field(default_factory=dict, max_length=500)


class WarehouseOut(BaseModel):
    code: str
    name: str
    region: str
    latitude: float
    longitude: float
    capabilities: list[str]
    shipping_costs: dict[str, Decimal] = Field(default_factory=dict)


class SkuIn(Strict):
    sku: str = Code
    name: str = Field(min_length=1, max_length=200)
    attributes: dict[str, Any] = Field(default_factory=dict)


class SkuOut(BaseModel):
    sku: str
    name: str
    attributes: dict[str, Any]


class ReceiptIn(Strict):
    sku: str = Code
    warehouse: str = Code
    qty: int = Field(gt=0, le=10_000_000)
    reason: str = Field(min_length=1, max_length=500)


class WarehouseStock(BaseModel):
    warehouse: str
    on_hand: int
    reserved: int
    available: int


class StockOut(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int
    warehouses: list[WarehouseStock]
    channels: list[ChannelStock] = Field(default_factory=list)


class ChannelStock(BaseModel):
    channel: str
    #: What the channel may still sell: the pool, limited by its cap, 0 while paused.
    available_to_sell: int
    reserved: int
    shipped: int
    cap_units: int | None
    paused: bool


Quantity = Field(gt=0, le=10_000_000)


class AdjustmentIn(Strict):
    sku: str = Code
    warehouse: str = Code
    #: Units added (positive) or removed (negative) from on hand.
    delta: int = Field(ge=-10_000_000, le=10_000_000)
    reason: str = Field(min_length=1, max_length=500)
    kind: Literal["adjustment", "cycle_count"] = "adjustment"


class TransferIn(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", min_length=1, max_length=64)
    to: str = Code
    sku: str = Code
    qty: int = Quantity
    reason: str = Field(min_length=1, max_length=500)


class PolicyIn(Strict):
    safety_stock: int = Field(default=0, ge=0, le=10_000_000)
    #: Per channel: a share of the total on hand ("60%") or a number of units (100).
    channel_caps: dict[str, str | int] = Field(default_factory=dict, max_length=64)
    #: Channels paused while available is below the safety stock.
    pause_channels: list[str] = Field(default_factory=list, max_length=64)
    abc_override: Literal["A", "B", "C"] | None = None
    #: Units one buyer may hold or have bought (a flash sale's limit); None: no cap.
    max_per_customer: int | None = Field(default=None, ge=1, le=1_000_000)


class PolicyOut(BaseModel):
    sku: str
    safety_stock: int
    channel_caps: dict[str, str | int]
    pause_channels: list[str]
    abc_class: Literal["A", "B", "C"]
    abc_override: Literal["A", "B", "C"] | None
    #: The class in force: the override if any, else the computed one.
    effective_abc_class: Literal["A", "B", "C"]
    #: Available is below the safety stock (the configured channels are paused).
    low: bool
    channels: list[ChannelStock]
    #: Units one buyer may hold or have bought; None: no cap per customer.
    max_per_customer: int | None = None


class LedgerEntry(BaseModel):
    id: int
    at: datetime
    sku: str
    warehouse: str
    kind: str
    reason: str
    operator: str
    order_id: str | None
    delta_on_hand: int
    delta_reserved: int
    on_hand_after: int
    reserved_after: int


class LedgerPage(BaseModel):
    items: list[LedgerEntry]
    #: Pass as ``cursor`` for the next page; None on the last page.
    next_cursor: str | None


class AbcOut(BaseModel):
    classes: dict[str, Literal["A", "B", "C"]]


StockOut.model_rebuild()
