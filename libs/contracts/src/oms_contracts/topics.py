"""Topic names and which event goes on which topic.

Partition-key rule: every event is keyed by its aggregate id (``Event.key_field``):
order events and stock reservation answers by order id, customer events by customer id,
stock-level events by SKU. Kafka orders messages only within a partition, so everything
that must be applied in order shares a key.
"""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    #: Channel facts (gateway -> order-svc): orders as received and as the channels
    #: update them, keyed by order id.
    CHANNEL_ORDERS = "oms.channel.orders"
    #: Order life cycle (order-svc -> everyone), keyed by order id.
    ORDERS = "oms.orders"
    #: Answers to reservation requests (inventory-svc -> order-svc), keyed by order id.
    RESERVATIONS = "oms.inventory.reservations"
    #: Stock levels, channel availability and stock alerts (inventory-svc), keyed by SKU;
    #: warehouse master data keyed by warehouse code.
    STOCK = "oms.inventory.stock"
    #: Customer master data (customer-svc -> everyone), keyed by customer id.
    CUSTOMERS = "oms.customers"
    #: Alerts raised for people (any service -> notifier), keyed by the alert's subject.
    ALERTS = "oms.alerts"


#: Which topic carries each event type. An event type appears on exactly one topic.
_EVENT_TOPICS: dict[str, Topic] = {
    "OrderReceived": Topic.CHANNEL_ORDERS,
    "ChannelOrderUpdated": Topic.CHANNEL_ORDERS,
    "OrderCreated": Topic.ORDERS,
    "OrderPaid": Topic.ORDERS,
    "OrderConfirmed": Topic.ORDERS,
    "OrderStatusChanged": Topic.ORDERS,
    "StockReserved": Topic.RESERVATIONS,
    "StockRejected": Topic.RESERVATIONS,
    "CustomerUpdated": Topic.CUSTOMERS,
    "CustomerResolved": Topic.CUSTOMERS,
    "AlertRaised": Topic.ALERTS,
    "OrderCancelled": Topic.ORDERS,
    "OrderShipped": Topic.ORDERS,
    "OrderDelivered": Topic.ORDERS,
    "OrderRefunded": Topic.ORDERS,
    "StockReleased": Topic.RESERVATIONS,
    "StockLevelChanged": Topic.STOCK,
    "StockLow": Topic.STOCK,
    "ChannelSalesPaused": Topic.STOCK,
    "ChannelSalesResumed": Topic.STOCK,
    "ChannelStockLevel": Topic.STOCK,
    "WarehouseUpdated": Topic.STOCK,
    "CustomerMerged": Topic.CUSTOMERS,
    "CreditCheckDegraded": Topic.ALERTS,
    "CreditCheckRecovered": Topic.ALERTS,
    "SlaAtRisk": Topic.ALERTS,
    "SlaBreached": Topic.ALERTS,
    "OrderExceptionRaised": Topic.ORDERS,
    "OrderExceptionResolved": Topic.ORDERS,
    "OrderRouted": Topic.ORDERS,
    "ReplenishmentSuggested": Topic.STOCK,
}


def topic_for(event_type: str) -> Topic:
    """The topic an event type is published on."""
    try:
        return _EVENT_TOPICS[event_type]
    except KeyError as exc:
        raise KeyError(f"no topic declared for event type {event_type!r}") from exc


def all_topics() -> list[str]:
    return [t.value for t in Topic]


def dead_letter_topic(topic: str) -> str:
    """Where messages of ``topic`` that cannot be processed end up."""
    return f"{topic}.dlq"
