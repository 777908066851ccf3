"""Order life-cycle events, keyed by order id."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from oms_contracts.envelope import Event
from oms_contracts.events.common import (
    Address,
    CustomerIdentity,
    OrderLine,
    PaymentTerms,
    Priority,
)
from oms_contracts.owners import CHANNEL_GATEWAY, ORDER_SVC


class OrderReceived(Event):
    """A channel's order, first seen, in canonical form (channel-gateway -> order-svc).

    A channel fact: what the channel said, not what the OMS decided. ``order_id`` is
    assigned by the gateway and becomes the order's id in order-svc, so a channel can be
    answered with the reference before the order exists downstream. Everything the
    channel says later about the order comes as :class:`ChannelOrderUpdated`.
    """

    event_type: ClassVar[str] = "OrderReceived"
    owner: ClassVar[str] = CHANNEL_GATEWAY
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
    #: The channel's own time of this version of the order (Shopify ``updated_at``, ...):
    #: later facts older than it are stale. None when the channel gives no time.
    channel_updated_at: datetime | None = None
    #: How the buyer pays: up front (``prepaid``), on account (invoiced, B2B) or cash on
    #: delivery. Terms other than prepaid leave the goods unpaid until after they ship,
    #: which is one reason order-svc asks the credit bureau.
    payment_terms: PaymentTerms = "prepaid"


class ChannelOrderUpdated(Event):
    """What a channel now says about an order it sent before (channel-gateway -> order-svc).

    A channel fact, never a decision: the gateway derives it from the signed body only
    (never from an unsigned header such as the webhook topic) and order-svc, the order's
    owner, decides what it means for the order in its state (pay it, cancel it, send it
    to an operator). It carries the channel's whole current view of what may change,
    so applying the newest fact is enough; ``channel_updated_at`` orders facts (an older
    fact than the one applied is stale and changes nothing).
    """

    event_type: ClassVar[str] = "ChannelOrderUpdated"
    owner: ClassVar[str] = CHANNEL_GATEWAY
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    channel_order_id: str
    #: What changed compared with what the gateway held (``paid``, ``cancelled``,
    #: ``lines``, ``address``), for people and logs; the fields below are the facts.
    changes: list[Literal["paid", "cancelled", "lines", "address"]]
    paid: bool
    paid_at: datetime | None = None
    cancelled: bool = False
    cancelled_at: datetime | None = None
    cancel_reason: str | None = Field(default=None, max_length=500)
    lines: list[OrderLine]
    currency: str
    shipping_address: Address
    channel_updated_at: datetime | None = None
    received_at: datetime


class OrderCreated(Event):
    event_type: ClassVar[str] = "OrderCreated"
    owner: ClassVar[str] = ORDER_SVC
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
    owner: ClassVar[str] = ORDER_SVC
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
    owner: ClassVar[str] = ORDER_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    confirmed_at: datetime


class StatusTransition(BaseModel):
    """One earlier state transition carried by an :class:`OrderStatusChanged`."""

    model_config = ConfigDict(frozen=True)

    from_state: str | None
    to_state: str
    actor: str
    reason: str | None = None
    changed_at: datetime


class OrderStatusChanged(Event):
    """An order's state transition, with who made it and why.

    One per order and commit: when one transaction moves an order several times (paid
    and reserved and confirmed and routed as one batch is applied), the event is the
    last transition and ``earlier`` lists the ones before it, oldest first. A reader of
    every transition (the board, an audit) reads ``earlier`` first; a reader of the
    current state reads only the event's own fields.
    """

    event_type: ClassVar[str] = "OrderStatusChanged"
    owner: ClassVar[str] = ORDER_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None = None
    changed_at: datetime
    earlier: list[StatusTransition] = []


class OrderCancelled(Event):
    """The order is cancelled: any stock held for it must be released."""

    event_type: ClassVar[str] = "OrderCancelled"
    owner: ClassVar[str] = ORDER_SVC
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
    owner: ClassVar[str] = ORDER_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    carrier: str
    tracking_number: str
    lines: list[ShipmentLine]
    shipped_at: datetime


class OrderDelivered(Event):
    event_type: ClassVar[str] = "OrderDelivered"
    owner: ClassVar[str] = ORDER_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    delivered_at: datetime


class OrderRefunded(Event):
    event_type: ClassVar[str] = "OrderRefunded"
    owner: ClassVar[str] = ORDER_SVC
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
    # The channel cancelled an order that had already shipped: a return for a person.
    "cancelled_after_shipment",
    # Inventory released the order's stock on its own (an expired or operator release).
    "reservation_lost",
    # The order waited on another service past its time and re-sends did not help.
    "stalled",
    # The channel changed lines or address after the stock was held or picking began.
    "order_changed",
]


class OrderExceptionRaised(Event):
    """An order entered the exception queue with a classified cause."""

    event_type: ClassVar[str] = "OrderExceptionRaised"
    owner: ClassVar[str] = ORDER_SVC
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
    owner: ClassVar[str] = ORDER_SVC
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
    owner: ClassVar[str] = ORDER_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    shipments: list[RoutedShipment]
    split: bool
    requirements: list[str] = []
    routed_at: datetime
