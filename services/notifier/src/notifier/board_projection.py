"""Feeds the operations board's read model from the events notifier already consumes.

Each projection runs after the event's own handler, in the same unit of work, so the
event log, any alert and the board change commit together with the inbox row (a
redelivered event changes nothing). Projections are gathered per transaction and written
in a few statements just before it commits (:mod:`notifier.pending_writes`). Only events
that say something about the board are projected; the rest are left to their handlers.
"""

from __future__ import annotations

from collections.abc import Callable

from notifier.domain.board import EXCEPTION_STATE, exception_cause
from notifier.domain.board_changes import BoardChanges
from notifier.pending_writes import pending_writes
from oms_contracts import Envelope, Event
from oms_contracts.events import (
    ChannelSalesPaused,
    ChannelSalesResumed,
    CreditCheckDegraded,
    CustomerResolved,
    OrderCreated,
    OrderExceptionRaised,
    OrderExceptionResolved,
    OrderRouted,
    OrderStatusChanged,
    SlaAtRisk,
    SlaBreached,
    StatusTransition,
    StockLevelChanged,
    StockLow,
)
from oms_messaging import Handler, UnitOfWork

Projector = Callable[[BoardChanges, Event], None]


def _created(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, OrderCreated)
    board.order_created(
        order_id=event.order_id,
        channel=event.channel,
        channel_order_id=event.channel_order_id,
        currency=event.currency,
        total=event.total,
        priority=event.priority,
        created_at=event.created_at,
    )


def _status(board: BoardChanges, event: Event) -> None:
    """Every transition the event carries, the earlier ones of its commit first."""
    assert isinstance(event, OrderStatusChanged)
    transitions: list[StatusTransition | OrderStatusChanged] = [*event.earlier, event]
    for t in transitions:
        board.state_changed(
            order_id=event.order_id,
            channel=event.channel,
            from_state=t.from_state,
            to_state=t.to_state,
            reason=t.reason,
            changed_at=t.changed_at,
            cause=exception_cause(t.reason) if t.to_state == EXCEPTION_STATE else None,
        )


def _exception_raised(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, OrderExceptionRaised)
    board.exception_raised(
        order_id=event.order_id,
        cause=event.cause,
        exception_id=event.exception_id,
        channel=event.channel,
        detail=event.detail,
        raised_at=event.raised_at,
    )


def _exception_resolved(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, OrderExceptionResolved)
    board.exception_resolved(
        order_id=event.order_id,
        cause=event.cause,
        exception_id=event.exception_id,
        channel=event.channel,
        resolution=f"{event.action} by {event.actor}",
        resolved_at=event.resolved_at,
    )


def _routed(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, OrderRouted)
    routing = event.model_dump(mode="json", include={"shipments", "split", "requirements"})
    routing["routed_at"] = event.routed_at.isoformat()
    board.order_routed(order_id=event.order_id, channel=event.channel, routing=routing)


def _customer(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, CustomerResolved)
    board.customer_resolved(
        order_id=event.order_id, channel=event.channel, customer_id=event.customer_id
    )


def _credit(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, CreditCheckDegraded)
    board.credit_degraded(
        order_id=event.order_id,
        channel=event.channel,
        reason=event.reason,
        degraded_at=event.degraded_at,
    )


def _sla(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, SlaAtRisk | SlaBreached)
    board.sla(
        order_id=event.order_id,
        channel=event.channel,
        stage=event.stage,
        deadline=event.deadline,
        status="breached" if isinstance(event, SlaBreached) else "at_risk",
        raised_at=event.raised_at,
    )


def _stock_low(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, StockLow)
    board.stock_low(
        sku=event.sku,
        warehouse=event.warehouse,
        available=event.available,
        safety_stock=event.safety_stock,
        raised_at=event.raised_at,
    )


def _stock_level(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, StockLevelChanged)
    board.stock_level(
        sku=event.sku,
        warehouse=event.warehouse,
        available=event.available,
        changed_at=event.changed_at,
    )


def _paused(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, ChannelSalesPaused)
    board.channel_sales(
        sku=event.sku,
        channel=event.channel,
        paused=True,
        reason=event.reason,
        changed_at=event.paused_at,
    )


def _resumed(board: BoardChanges, event: Event) -> None:
    assert isinstance(event, ChannelSalesResumed)
    board.channel_sales(
        sku=event.sku,
        channel=event.channel,
        paused=False,
        reason=event.reason,
        changed_at=event.resumed_at,
    )


#: What the board learns from each event type.
PROJECTORS: dict[str, Projector] = {
    OrderCreated.event_type: _created,
    OrderStatusChanged.event_type: _status,
    OrderExceptionRaised.event_type: _exception_raised,
    OrderExceptionResolved.event_type: _exception_resolved,
    OrderRouted.event_type: _routed,
    CustomerResolved.event_type: _customer,
    CreditCheckDegraded.event_type: _credit,
    SlaAtRisk.event_type: _sla,
    SlaBreached.event_type: _sla,
    StockLow.event_type: _stock_low,
    StockLevelChanged.event_type: _stock_level,
    ChannelSalesPaused.event_type: _paused,
    ChannelSalesResumed.event_type: _resumed,
}


def projecting(handler: Handler, projector: Projector) -> Handler:
    """``handler``, then the board's projection of the same event in the same transaction
    (gathered with the transaction's other board changes, written before it commits)."""

    async def handle(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        await handler(uow, envelope, event)
        projector(pending_writes(uow).board, event)

    return handle


def with_board_projection(handlers: dict[str, Handler]) -> dict[str, Handler]:
    """The handlers, each also feeding the board where its event concerns the board."""
    return {
        event_type: projecting(handler, PROJECTORS[event_type])
        if event_type in PROJECTORS
        else handler
        for event_type, handler in handlers.items()
    }
