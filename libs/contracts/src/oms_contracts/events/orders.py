"""Order life-cycle events, keyed by order id."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

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
