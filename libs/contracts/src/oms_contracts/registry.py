"""Lookup from (event type, schema version) to the model that parses it."""

from __future__ import annotations

from oms_contracts import events as ev
from oms_contracts.envelope import Envelope, Event


class UnknownEventError(LookupError):
    """No model is registered for this event type and schema version."""


class EventRegistry:
    def __init__(self, models: list[type[Event]]) -> None:
        self._models = {(m.event_type, m.schema_version): m for m in models}

    def models(self) -> list[type[Event]]:
        return sorted(self._models.values(), key=lambda m: (m.event_type, m.schema_version))

    def knows_type(self, event_type: str) -> bool:
        return any(t == event_type for t, _ in self._models)

    def model_for(self, event_type: str, schema_version: int) -> type[Event]:
        try:
            return self._models[(event_type, schema_version)]
        except KeyError as exc:
            raise UnknownEventError(f"{event_type} v{schema_version}") from exc

    def parse(self, envelope: Envelope) -> Event:
        """The typed payload of ``envelope``; raises on unknown type/version or bad data."""
        return self.model_for(envelope.event_type, envelope.schema_version).model_validate(
            envelope.payload
        )


REGISTRY = EventRegistry(
    [
        ev.OrderReceived,
        ev.ChannelOrderUpdated,
        ev.OrderCreated,
        ev.OrderPaid,
        ev.OrderConfirmed,
        ev.OrderStatusChanged,
        ev.StockReserved,
        ev.StockRejected,
        ev.CustomerUpdated,
        ev.CustomerResolved,
        ev.AlertRaised,
        ev.OrderCancelled,
        ev.OrderShipped,
        ev.OrderDelivered,
        ev.OrderRefunded,
        ev.StockReleased,
        ev.StockLevelChanged,
        ev.StockLow,
        ev.ChannelSalesPaused,
        ev.ChannelSalesResumed,
        ev.ChannelStockLevel,
        ev.WarehouseUpdated,
        ev.CustomerMerged,
        ev.CreditCheckDegraded,
        ev.CreditCheckRecovered,
        ev.SlaAtRisk,
        ev.SlaBreached,
        ev.OrderExceptionRaised,
        ev.OrderExceptionResolved,
        ev.OrderRouted,
        ev.ReplenishmentSuggested,
    ]
)
