"""Request and response bodies of inventory-svc's API."""

from __future__ import annotations

from typing import Any

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


class WarehouseOut(BaseModel):
    code: str
    name: str
    region: str
    latitude: float
    longitude: float
    capabilities: list[str]


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
