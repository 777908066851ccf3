"""Wire validation of raw message bytes against the committed schema files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oms_contracts import Envelope, Event, make_envelope
from oms_contracts.events import OrderPaid
from oms_contracts.schema_export import write
from oms_contracts.validation import UnknownSchemaError, WireValidationError, validate_wire_message


def wire(order_paid: OrderPaid) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        make_envelope(order_paid, producer="order-svc").model_dump_json()
    )
    return loaded


def test_real_envelope_validates(order_paid: OrderPaid) -> None:
    envelope = make_envelope(order_paid, producer="order-svc")
    value = envelope.model_dump_json().encode()

    parsed = validate_wire_message(value, topic="oms.orders", key=str(order_paid.order_id))

    assert parsed == envelope


def test_every_sample_event_validates(samples: dict[str, Event]) -> None:
    for event in samples.values():
        validate_wire_message(make_envelope(event, producer="t").model_dump_json())


def test_payload_field_of_wrong_type_fails_with_its_path(order_paid: OrderPaid) -> None:
    message = wire(order_paid)
    message["payload"]["total"] = 25.0  # a float for money: the contract says string

    with pytest.raises(WireValidationError) as info:
        validate_wire_message(json.dumps(message))

    assert info.value.event_type == "OrderPaid" and info.value.schema_version == 1
    assert "OrderPaid v1" in str(info.value)
    assert "$.payload.total: 25.0 is not of type 'string'" in str(info.value)


def test_missing_required_field_fails_with_its_path(order_paid: OrderPaid) -> None:
    message = wire(order_paid)
    del message["payload"]["lines"][0]["sku"]

    with pytest.raises(WireValidationError) as info:
        validate_wire_message(json.dumps(message))

    assert info.value.errors == ["$.payload.lines[0].sku: required property is missing"]


def test_envelope_errors_name_the_envelope_path(order_paid: OrderPaid) -> None:
    message = wire(order_paid)
    del message["event_id"]
    message["schema_version"] = "1"

    with pytest.raises(WireValidationError) as info:
        validate_wire_message(json.dumps(message))

    assert str(info.value).startswith("envelope does not match")
    assert "$.event_id: required property is missing" in info.value.errors
    assert "$.schema_version: '1' is not of type 'integer'" in info.value.errors


@pytest.mark.parametrize(
    ("event_type", "version"), [("OrderTeleported", 1), ("OrderPaid", 99), ("../OrderPaid", 1)]
)
def test_unknown_event_type_or_version_fails_clearly(
    order_paid: OrderPaid, event_type: str, version: int
) -> None:
    message = wire(order_paid)
    message["event_type"], message["schema_version"] = event_type, version

    with pytest.raises(UnknownSchemaError, match=f"{event_type} v{version}: no committed schema"):
        validate_wire_message(json.dumps(message))


def test_key_must_be_the_payload_partition_key(order_paid: OrderPaid) -> None:
    message = wire(order_paid)
    message["key"] = "not-the-order-id"

    with pytest.raises(WireValidationError, match=r"\$\.key: 'not-the-order-id' is not"):
        validate_wire_message(json.dumps(message))


def test_wrong_topic_and_kafka_key_are_reported(order_paid: OrderPaid) -> None:
    value = make_envelope(order_paid, producer="t").model_dump_json()

    with pytest.raises(WireValidationError) as info:
        validate_wire_message(value, topic="oms.customers", key=b"other")

    assert any("contract says 'oms.orders'" in e for e in info.value.errors)
    assert any(e.startswith("(kafka key): 'other'") for e in info.value.errors)


def test_naive_timestamp_is_rejected(order_paid: OrderPaid) -> None:
    message = wire(order_paid)
    message["payload"]["paid_at"] = "2024-05-01T12:30:00"

    with pytest.raises(WireValidationError, match=r"\$\.payload\.paid_at: .* is not a 'date-time'"):
        validate_wire_message(json.dumps(message))


def test_not_json_fails_clearly() -> None:
    with pytest.raises(WireValidationError, match="message is not JSON"):
        validate_wire_message(b"\x00not json")


def test_schema_dir_can_be_chosen(tmp_path: Path, order_paid: OrderPaid) -> None:
    write(tmp_path)
    value = make_envelope(order_paid, producer="t").model_dump_json()
    assert isinstance(validate_wire_message(value, schema_dir=tmp_path), Envelope)
    (tmp_path / "OrderPaid.v1.json").unlink()
    with pytest.raises(UnknownSchemaError):
        validate_wire_message(value, schema_dir=tmp_path)
