"""Every event of the OMS, by the aggregate it belongs to."""

from oms_contracts.events.alerts import AlertRaised
from oms_contracts.events.common import Address, CustomerIdentity, OrderLine
from oms_contracts.events.customers import CustomerResolved, CustomerUpdated
from oms_contracts.events.inventory import RejectedLine, ReservedLine, StockRejected, StockReserved
from oms_contracts.events.orders import (
    OrderConfirmed,
    OrderCreated,
    OrderPaid,
    OrderReceived,
    OrderStatusChanged,
)

__all__ = [
    "Address",
    "AlertRaised",
    "CustomerIdentity",
    "CustomerResolved",
    "CustomerUpdated",
    "OrderConfirmed",
    "OrderCreated",
    "OrderLine",
    "OrderPaid",
    "OrderReceived",
    "OrderStatusChanged",
    "RejectedLine",
    "ReservedLine",
    "StockRejected",
    "StockReserved",
]
