"""Order life-cycle events, keyed by order id."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from oms_contracts.envelope import Event
from oms_contracts.events.common import Address, CustomerIdentity, OrderLine, Priority


class OrderReceived(Event):
    """A channel's order in canonical form (channel-gateway -> order-svc).

    ``order_id`` is assigned by the gateway and becomes the order's id in order-svc, so
    a channel can be answered with the reference before the order exists downstream.
    """

    event_type: ClassVar[str] = "OrderReceived"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    channel_order_id: str
    customer: CustomerIdentity
    lines: list[OrderLine]
    currency: str
    paid: bool
    paid_at: datetime | None = None
    shipping_address: Address
    delivery_requirements: list[str] = []
    notes: str | None = None
    priority: Priority = "normal"
    received_at: datetime


class OrderCreated(Event):
    event_type: ClassVar[str] = "OrderCreated"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    channel_order_id: str
    customer: CustomerIdentity
    lines: list[OrderLine]
    currency: str
    total: Decimal
    shipping_address: Address
    delivery_requirements: list[str] = []
    priority: Priority = "normal"
    created_at: datetime


class OrderPaid(Event):
    """Payment is in: the order's stock must now be reserved (all lines or none)."""

    event_type: ClassVar[str] = "OrderPaid"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    lines: list[OrderLine]
    currency: str
    total: Decimal
    paid_at: datetime
    #: The warehouse chosen for the order, if any; otherwise inventory picks one.
    warehouse: str | None = None
    #: Who buys, as an opaque key: the first 32 hex digits of the SHA-256 of
    #: ``"<channel>:<platform_user_id>"``. Inventory counts a SKU's per-customer cap by it
    #: and must never learn who the buyer is, so no personal data travels here. None from
    #: producers that predate it: such an order is not capped per customer.
    buyer: str | None = None


class OrderConfirmed(Event):
    event_type: ClassVar[str] = "OrderConfirmed"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    confirmed_at: datetime


class OrderStatusChanged(Event):
    """One state transition of an order, with who made it and why."""

    event_type: ClassVar[str] = "OrderStatusChanged"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None = None
    changed_at: datetime


class OrderCancelled(Event):
    """The order is cancelled: any stock held for it must be released."""

    event_type: ClassVar[str] = "OrderCancelled"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    reason: str
    actor: str
    cancelled_at: datetime


class ShipmentLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_no: int
    sku: str
    qty: int
    warehouse: str


class OrderShipped(Event):
    """The warehouse handed the parcel(s) to a carrier: reserved stock leaves on hand."""

    event_type: ClassVar[str] = "OrderShipped"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    carrier: str
    tracking_number: str
    lines: list[ShipmentLine]
    shipped_at: datetime


class OrderDelivered(Event):
    event_type: ClassVar[str] = "OrderDelivered"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    delivered_at: datetime


class OrderRefunded(Event):
    event_type: ClassVar[str] = "OrderRefunded"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    amount: Decimal
    currency: str
    reason: str
    actor: str
    refunded_at: datetime


#: Why an order left the happy path and waits for a person.
ExceptionCause = Literal[
    "credit_degraded",
    "credit_refused",
    "stock_rejected",
    "routing_impossible",
    "sla_breached",
    "payment_mismatch",
    "invalid_address",
    "unmapped_sku",
    "manual_review",
    # A buyer passed a SKU's per-customer cap (flash sale): a person decides, since more
    # stock would not help.
    "customer_limit",
]


class OrderExceptionRaised(Event):
    """An order entered the exception queue with a classified cause."""

    event_type: ClassVar[str] = "OrderExceptionRaised"
    key_field: ClassVar[str] = "order_id"

    exception_id: uuid.UUID
    order_id: uuid.UUID
    channel: str
    cause: ExceptionCause
    detail: str | None = None
    raised_at: datetime


class OrderExceptionResolved(Event):
    """An operator (or a rule) resolved an exception: retried, released or cancelled."""

    event_type: ClassVar[str] = "OrderExceptionResolved"
    key_field: ClassVar[str] = "order_id"

    exception_id: uuid.UUID
    order_id: uuid.UUID
    channel: str
    cause: ExceptionCause
    action: Literal["retry", "release", "cancel"]
    actor: str
    note: str | None = None
    resolved_at: datetime


class RoutedShipment(BaseModel):
    """One parcel of a routing decision: the warehouse, its lines and why it won."""

    model_config = ConfigDict(frozen=True)

    warehouse: str
    line_nos: list[int]
    score: float
    distance_km: float | None = None
    shipping_cost: Decimal | None = None


class OrderRouted(Event):
    """order-svc chose the fulfilment warehouse(s) for an order."""

    event_type: ClassVar[str] = "OrderRouted"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    shipments: list[RoutedShipment]
    split: bool
    requirements: list[str] = []
    routed_at: datetime
