"""Response bodies of routing, customer data and the pick list."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel


class ShipmentOut(BaseModel):
    warehouse: str
    line_nos: list[int]
    score: float
    distance_km: float | None = None
    shipping_cost: Decimal | None = None


class CandidateOut(BaseModel):
    """A warehouse routing considered, with the parts of its score."""

    warehouse: str
    score: float
    stock_fit: float
    distance_km: float | None = None
    shipping_cost: Decimal | None = None


class RoutingOut(BaseModel):
    """The routing decision of an order and its scores."""

    #: routed (warehouses chosen), deferred (inventory chose), impossible (exception).
    outcome: Literal["routed", "deferred", "impossible"]
    reason: str | None
    requirements: list[str]
    #: The parcels; once the stock is held (``routed_at``), where it actually is.
    shipments: list[ShipmentOut]
    candidates: list[CandidateOut]
    split: bool
    allow_split: bool
    #: Warehouses that refused the order's lines (the order was routed around them).
    excluded: list[str]
    attempts: int
    decided_at: datetime
    routed_at: datetime | None


class CustomerDataOut(BaseModel):
    """Where the customer's data on the order came from, and when it was copied."""

    customer_id: uuid.UUID
    #: receipt (buyer already known), resolved, updated (CustomerUpdated), merged.
    source: str
    profile_updated_at: datetime
    copied_at: datetime


class PickLine(BaseModel):
    line_no: int
    sku: str
    qty: int


class PickParcel(BaseModel):
    #: None: not yet assigned (inventory picks the warehouse when it reserves).
    warehouse: str | None
    lines: list[PickLine]


class PickListOut(BaseModel):
    """What the warehouse sees: what to pick where, and how the customer wants it."""

    order_id: uuid.UUID
    channel: str
    channel_order_id: str
    state: str
    priority: str
    parcels: list[PickParcel]
    #: Every requirement: the order's own and its customer's.
    delivery_requirements: list[str]
    order_requirements: list[str]
    customer_requirements: list[str]
    tags: list[str]
    notes: str | None
    shipping_address: dict[str, Any]
    customer_data: CustomerDataOut | None = None


class RoutingWarehouseOut(BaseModel):
    """A warehouse as routing knows it (from inventory-svc's WarehouseUpdated)."""

    code: str
    name: str
    region: str
    latitude: float
    longitude: float
    capabilities: list[str]
    shipping_costs: dict[str, Decimal]
    updated_at: datetime
