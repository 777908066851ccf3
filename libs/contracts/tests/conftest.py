"""One valid instance of every registered event, shared by the contract tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from oms_contracts import Event
from oms_contracts import events as ev

ORDER_ID = uuid.UUID("6f1c1b2e-8a43-4d53-9d0c-2b9f8d1f0a01")
CUSTOMER_ID = uuid.UUID("0b7f4f8e-2c5d-4e5a-8f0e-9d1c3b2a1f00")
NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
LINES = [ev.OrderLine(line_no=1, sku="SKU-1", qty=2, unit_price=Decimal("12.50"))]
CUSTOMER = ev.CustomerIdentity(platform_user_id="u-1", name="Ana")
ADDRESS = ev.Address(region="Lisboa", city="Lisboa")


EXCEPTION_ID = uuid.UUID("6f1c2a9e-3b7d-4c55-9a10-0d2e8f4b7c21")


def build_samples() -> dict[str, Event]:
    """Event type -> a realistic instance; a new event type must be added here."""
    samples: list[Event] = [
        ev.OrderReceived(
            order_id=ORDER_ID,
            channel="shop",
            channel_order_id="C-1",
            customer=CUSTOMER,
            lines=LINES,
            currency="EUR",
            paid=True,
            paid_at=NOW,
            shipping_address=ADDRESS,
            received_at=NOW,
        ),
        ev.ChannelOrderUpdated(
            order_id=ORDER_ID,
            channel="shop",
            channel_order_id="C-1",
            changes=["paid"],
            paid=True,
            paid_at=NOW,
            lines=LINES,
            currency="EUR",
            shipping_address=ADDRESS,
            channel_updated_at=NOW,
            received_at=NOW,
        ),
        ev.OrderCreated(
            order_id=ORDER_ID,
            channel="shop",
            channel_order_id="C-1",
            customer=CUSTOMER,
            lines=LINES,
            currency="EUR",
            total=Decimal("25.00"),
            shipping_address=ADDRESS,
            created_at=NOW,
        ),
        ev.OrderPaid(
            order_id=ORDER_ID,
            channel="shop",
            lines=LINES,
            currency="EUR",
            total=Decimal("25.00"),
            paid_at=NOW,
            buyer="5b0e7c2a9d4f1e3b8a6c0d2f4e6a8b1c",
        ),
        ev.OrderConfirmed(order_id=ORDER_ID, channel="shop", confirmed_at=NOW),
        ev.OrderStatusChanged(
            order_id=ORDER_ID,
            channel="shop",
            from_state="paid",
            to_state="confirmed",
            actor="order-svc",
            changed_at=NOW,
        ),
        ev.StockReserved(
            order_id=ORDER_ID,
            lines=[ev.ReservedLine(line_no=1, sku="SKU-1", qty=2, warehouse="W1")],
            reserved_at=NOW,
        ),
        ev.StockRejected(
            order_id=ORDER_ID,
            lines=[
                ev.RejectedLine(line_no=1, sku="SKU-1", qty=2, reason="insufficient", available=1),
                ev.RejectedLine(
                    line_no=2, sku="SKU-2", qty=3, reason="customer_limit", available=1
                ),
            ],
            rejected_at=NOW,
        ),
        ev.CustomerUpdated(customer_id=CUSTOMER_ID, changed_fields=["name"], updated_at=NOW),
        ev.CustomerResolved(
            customer_id=CUSTOMER_ID,
            order_id=ORDER_ID,
            channel="shop",
            platform_user_id="u-1",
            new_customer=False,
            resolved_at=NOW,
        ),
        ev.AlertRaised(
            alert_id=uuid.uuid4(),
            alert_type="stock_low",
            severity="warning",
            subject="SKU-1",
            message="low stock",
            details={"available": 1},
            raised_at=NOW,
        ),
        ev.OrderCancelled(
            order_id=ORDER_ID,
            channel="shop",
            reason="customer asked",
            actor="op-1",
            cancelled_at=NOW,
        ),
        ev.OrderShipped(
            order_id=ORDER_ID,
            channel="shop",
            carrier="SF",
            tracking_number="SF1",
            lines=[ev.ShipmentLine(line_no=1, sku="SKU-1", qty=2, warehouse="WH-1")],
            shipped_at=NOW,
        ),
        ev.OrderDelivered(order_id=ORDER_ID, channel="shop", delivered_at=NOW),
        ev.OrderRefunded(
            order_id=ORDER_ID,
            channel="shop",
            amount=Decimal("25.00"),
            currency="EUR",
            reason="damaged",
            actor="op-1",
            refunded_at=NOW,
        ),
        ev.StockReleased(
            order_id=ORDER_ID,
            lines=[ev.ReservedLine(line_no=1, sku="SKU-1", qty=2, warehouse="WH-1")],
            reason="expired",
            released_at=NOW,
        ),
        ev.StockLevelChanged(
            sku="SKU-1", warehouse="WH-1", on_hand=5, reserved=2, available=3, changed_at=NOW
        ),
        ev.StockLow(sku="SKU-1", available=3, safety_stock=5, raised_at=NOW),
        ev.ChannelSalesPaused(sku="SKU-1", channel="live", reason="safety stock", paused_at=NOW),
        ev.ChannelSalesResumed(sku="SKU-1", channel="live", reason="restocked", resumed_at=NOW),
        ev.ChannelStockLevel(
            sku="SKU-1", channel="live", available_to_sell=3, abc_class="A", as_of=NOW
        ),
        ev.WarehouseUpdated(
            code="WH-1",
            name="Lisbon",
            region="PT-11",
            latitude=38.7,
            longitude=-9.1,
            capabilities=["cold_chain"],
            shipping_costs={"PT-11": Decimal("3.50")},
            updated_at=NOW,
        ),
        ev.CustomerMerged(
            surviving_id=CUSTOMER_ID, merged_id=uuid.uuid4(), actor="op-1", merged_at=NOW
        ),
        ev.CreditCheckDegraded(
            order_id=ORDER_ID, channel="shop", reason="timeout", degraded_at=NOW
        ),
        ev.CreditCheckRecovered(recovered_at=NOW),
        ev.SlaAtRisk(
            order_id=ORDER_ID,
            channel="shop",
            order_class="normal",
            stage="review",
            deadline=NOW,
            raised_at=NOW,
        ),
        ev.SlaBreached(
            order_id=ORDER_ID,
            channel="shop",
            order_class="normal",
            stage="review",
            deadline=NOW,
            raised_at=NOW,
        ),
        ev.OrderExceptionRaised(
            exception_id=EXCEPTION_ID,
            order_id=ORDER_ID,
            channel="shop",
            cause="stock_rejected",
            detail="SKU-1: insufficient",
            raised_at=NOW,
        ),
        ev.OrderExceptionResolved(
            exception_id=EXCEPTION_ID,
            order_id=ORDER_ID,
            channel="shop",
            cause="stock_rejected",
            action="retry",
            actor="op-1",
            resolved_at=NOW,
        ),
        ev.OrderRouted(
            order_id=ORDER_ID,
            channel="shop",
            shipments=[
                ev.RoutedShipment(
                    warehouse="WH-1",
                    line_nos=[1],
                    score=0.82,
                    distance_km=12.5,
                    shipping_cost=Decimal("3.50"),
                )
            ],
            split=False,
            requirements=["cold_chain"],
            routed_at=NOW,
        ),
        ev.ReplenishmentSuggested(
            sku="SKU-1",
            warehouse="WH-1",
            suggested_qty=120,
            abc_class="A",
            forecast_over_lead_time=140.0,
            safety_stock=20,
            available=30,
            on_order=10,
            lead_time_days=7,
            reason="forecast 140.0 over 7 d + safety 20 - available 30 - on order 10",
            suggested_at=NOW,
        ),
    ]
    return {e.event_type: e for e in samples}


@pytest.fixture
def samples() -> dict[str, Event]:
    return build_samples()


@pytest.fixture
def order_paid() -> ev.OrderPaid:
    event = build_samples()["OrderPaid"]
    assert isinstance(event, ev.OrderPaid)
    return event
