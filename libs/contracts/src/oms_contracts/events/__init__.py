"""Every event of the OMS, by the aggregate it belongs to."""

from oms_contracts.events.alerts import AlertRaised, CreditCheckDegraded, SlaAtRisk, SlaBreached
from oms_contracts.events.common import Address, CustomerIdentity, OrderLine
from oms_contracts.events.customers import CustomerMerged, CustomerResolved, CustomerUpdated
from oms_contracts.events.inventory import (
    ChannelSalesPaused,
    ChannelSalesResumed,
    ChannelStockLevel,
    RejectedLine,
    ReservedLine,
    StockLevelChanged,
    StockLow,
    StockRejected,
    StockReleased,
    StockReserved,
    WarehouseUpdated,
)
from oms_contracts.events.orders import (
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderDelivered,
    OrderPaid,
    OrderReceived,
    OrderRefunded,
    OrderShipped,
    OrderStatusChanged,
    ShipmentLine,
)

__all__ = [
    "Address",
    "AlertRaised",
    "ChannelSalesPaused",
    "ChannelSalesResumed",
    "ChannelStockLevel",
    "CreditCheckDegraded",
    "CustomerIdentity",
    "CustomerMerged",
    "CustomerResolved",
    "CustomerUpdated",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderCreated",
    "OrderDelivered",
    "OrderLine",
    "OrderPaid",
    "OrderReceived",
    "OrderRefunded",
    "OrderShipped",
    "OrderStatusChanged",
    "RejectedLine",
    "ReservedLine",
    "ShipmentLine",
    "SlaAtRisk",
    "SlaBreached",
    "StockLevelChanged",
    "StockLow",
    "StockRejected",
    "StockReleased",
    "StockReserved",
    "WarehouseUpdated",
]
