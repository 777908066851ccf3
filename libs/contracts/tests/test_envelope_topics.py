"""Envelope round trip, causation/correlation, topics and partition keys."""

from __future__ import annotations

import uuid

import pytest

from oms_contracts import (
    REGISTRY,
    SERVICES,
    Envelope,
    Event,
    NotTheOwner,
    check_owner,
    make_envelope,
    topic_for,
)
from oms_contracts.events import OrderPaid
from oms_contracts.topics import Topic, all_topics


def test_envelope_round_trips_through_json(samples: dict[str, Event]) -> None:
    for event in samples.values():
        envelope = make_envelope(event, producer="t")
        again = Envelope.model_validate_json(envelope.model_dump_json())
        assert again == envelope
        assert REGISTRY.parse(again) == event


def test_make_envelope_fills_identity_and_metadata(order_paid: OrderPaid) -> None:
    envelope = make_envelope(order_paid, producer="order-svc")
    assert envelope.event_type == "OrderPaid"
    assert envelope.schema_version == 1
    assert envelope.producer == "order-svc"
    assert envelope.causation_id is None
    uuid.UUID(envelope.correlation_id)  # a fresh correlation id when none is given
    assert envelope.occurred_at.tzinfo is not None
    assert make_envelope(order_paid, producer="x").event_id != envelope.event_id


def test_caused_event_inherits_correlation_and_names_its_cause(
    samples: dict[str, Event],
) -> None:
    cause = make_envelope(samples["OrderPaid"], producer="order-svc", correlation_id="corr-1")
    effect = make_envelope(samples["StockReserved"], producer="inventory-svc", causation=cause)
    assert effect.correlation_id == "corr-1"
    assert effect.causation_id == str(cause.event_id)


def test_explicit_correlation_id_wins_over_the_cause(samples: dict[str, Event]) -> None:
    cause = make_envelope(samples["OrderPaid"], producer="o", correlation_id="corr-1")
    effect = make_envelope(
        samples["StockReserved"], producer="i", causation=cause, correlation_id="corr-2"
    )
    assert effect.correlation_id == "corr-2"
    assert effect.causation_id == str(cause.event_id)


@pytest.mark.parametrize("model", REGISTRY.models(), ids=lambda m: m.event_type)
def test_every_registered_event_type_has_a_topic(model: type[Event]) -> None:
    assert topic_for(model.event_type).value in all_topics()


def test_unknown_event_type_has_no_topic() -> None:
    with pytest.raises(KeyError, match="OrderTeleported"):
        topic_for("OrderTeleported")


def test_samples_cover_every_registered_event(samples: dict[str, Event]) -> None:
    assert set(samples) == {m.event_type for m in REGISTRY.models()}


def test_order_events_are_keyed_by_order_id(samples: dict[str, Event]) -> None:
    """Everything on the order and reservation topics shares the order's partition."""
    keyed_by_order = [
        e
        for e in samples.values()
        if topic_for(e.event_type) in {Topic.CHANNEL_ORDERS, Topic.ORDERS, Topic.RESERVATIONS}
    ]
    assert {e.event_type for e in keyed_by_order} >= {"OrderPaid", "StockReserved"}
    for event in keyed_by_order:
        assert event.key_field == "order_id", event.event_type
        order_id = event.order_id  # type: ignore[attr-defined]
        assert event.partition_key() == str(order_id)
        assert make_envelope(event, producer="t").key == str(order_id)


@pytest.mark.parametrize("model", REGISTRY.models(), ids=lambda m: m.event_type)
def test_every_event_type_names_one_owning_service(model: type[Event]) -> None:
    assert model.owner in SERVICES, model.event_type


def test_the_gateway_owns_channel_facts_and_order_svc_owns_the_order_life_cycle() -> None:
    owners = {m.event_type: m.owner for m in REGISTRY.models()}
    assert owners["OrderReceived"] == owners["ChannelOrderUpdated"] == "channel-gateway"
    for decision in ("OrderPaid", "OrderCancelled", "OrderShipped", "OrderConfirmed"):
        assert owners[decision] == "order-svc", decision
    assert owners["StockReserved"] == owners["StockReleased"] == "inventory-svc"


def test_a_service_that_does_not_own_an_event_type_may_not_publish_it() -> None:
    with pytest.raises(NotTheOwner, match="channel-gateway may not publish OrderPaid"):
        check_owner("OrderPaid", "order-svc", "channel-gateway")
    check_owner("OrderPaid", "order-svc", "order-svc")
    check_owner("OrderPaid", "order-svc", "fault-drill")  # not a service: a harness
