"""Table-driven tests of the compatibility checker, with synthetic pydantic models.

The incompatible rows prove the checker can fail; without them a checker returning
``[]`` for everything would make the committed-schema guard pass vacuously.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field

from oms_contracts.compat import backward_incompatibilities


def wire(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization")


class Line(BaseModel):
    sku: str
    qty: int


class Base(BaseModel):
    id: str
    status: Literal["new", "paid"]
    amount: Decimal
    note: str | None = None
    lines: list[Line]


# --- incompatible variants of Base -------------------------------------------------------


class FieldRemoved(BaseModel):
    id: str
    status: Literal["new", "paid"]
    amount: Decimal
    lines: list[Line]


class FieldRetyped(BaseModel):
    id: int
    status: Literal["new", "paid"]
    amount: Decimal
    note: str | None = None
    lines: list[Line]


class RequiredFieldAdded(BaseModel):
    id: str
    status: Literal["new", "paid"]
    amount: Decimal
    note: str | None = None
    lines: list[Line]
    channel: str


class FieldMadeRequired(BaseModel):
    id: str
    status: Literal["new", "paid"]
    amount: Decimal
    note: str | None
    lines: list[Line]


class EnumValueRemoved(BaseModel):
    id: str
    status: Literal["new"]
    amount: Decimal
    note: str | None = None
    lines: list[Line]


class MadeNonNullable(BaseModel):
    id: str
    status: Literal["new", "paid"]
    amount: Decimal
    note: str = ""
    lines: list[Line]


class LineQtyRetyped(BaseModel):
    sku: str
    qty: str


class NestedFieldRetyped(BaseModel):
    id: str
    status: Literal["new", "paid"]
    amount: Decimal
    note: str | None = None
    lines: list[LineQtyRetyped]


class LineSkuRemoved(BaseModel):
    qty: int


class NestedFieldRemoved(BaseModel):
    id: str
    status: Literal["new", "paid"]
    amount: Decimal
    note: str | None = None
    lines: list[LineSkuRemoved]


# --- compatible variants of Base ---------------------------------------------------------


class OptionalFieldAdded(BaseModel):
    id: str
    status: Literal["new", "paid"]
    amount: Decimal
    note: str | None = None
    lines: list[Line]
    warehouse: str | None = None
    tags: list[str] = []


class EnumValueAdded(BaseModel):
    id: str
    status: Literal["new", "paid", "cancelled"]
    amount: Decimal
    note: str | None = None
    lines: list[Line]


class DescriptionsChanged(BaseModel):
    """Now with a docstring."""

    id: str = Field(description="the order id")
    status: Literal["new", "paid"] = Field(title="State")
    amount: Decimal
    note: Optional[str] = None  # noqa: UP045 - spelled differently on purpose
    lines: list[Line]


class RequiredMadeOptional(BaseModel):
    id: str
    status: Literal["new", "paid"] = "new"
    amount: Decimal
    note: str | None = None
    lines: list[Line] = []


INCOMPATIBLE = [
    ("removed field", FieldRemoved, "$.note: property removed"),
    ("retyped field", FieldRetyped, "$.id: type changed from string to integer"),
    ("new required field", RequiredFieldAdded, "$.channel: new required property"),
    ("field made required", FieldMadeRequired, "$.note: property became required"),
    ("enum value removed", EnumValueRemoved, '$.status: enum values removed: "paid"'),
    ("nullable made non-nullable", MadeNonNullable, "$.note: type changed from string|null"),
    ("nested field retyped", NestedFieldRetyped, "$.lines[*].qty: type changed from integer"),
    ("nested field removed", NestedFieldRemoved, "$.lines[*].sku: property removed"),
]

COMPATIBLE = [
    ("identical", Base),
    ("new optional field", OptionalFieldAdded),
    ("enum value added", EnumValueAdded),
    ("descriptions and titles changed", DescriptionsChanged),
    ("required made optional", RequiredMadeOptional),
]


@pytest.mark.parametrize(
    ("case", "new", "expected"), INCOMPATIBLE, ids=[row[0] for row in INCOMPATIBLE]
)
def test_incompatible_change_is_reported_with_its_path(
    case: str, new: type[BaseModel], expected: str
) -> None:
    problems = backward_incompatibilities(wire(Base), wire(new))
    assert any(p.startswith(expected) for p in problems), (case, problems)


@pytest.mark.parametrize(("case", "new"), COMPATIBLE, ids=[row[0] for row in COMPATIBLE])
def test_compatible_change_is_not_reported(case: str, new: type[BaseModel]) -> None:
    assert backward_incompatibilities(wire(Base), wire(new)) == [], case


def test_number_or_string_narrowed_to_string_is_reported() -> None:
    # Decimal in validation mode is number|string; a plain string drops numbers.
    class Old(BaseModel):
        amount: Decimal

    class New(BaseModel):
        amount: str

    problems = backward_incompatibilities(
        Old.model_json_schema(mode="validation"), New.model_json_schema(mode="validation")
    )
    assert problems == [
        "$.amount: type changed from string|number to string (number no longer accepted)"
    ]


def test_widening_is_compatible() -> None:
    class Old(BaseModel):
        qty: int
        name: str

    class New(BaseModel):
        qty: float
        name: str | int | None = None

    assert backward_incompatibilities(wire(Old), wire(New)) == []


def test_narrowing_a_number_to_an_integer_is_reported() -> None:
    class Old(BaseModel):
        qty: float

    class New(BaseModel):
        qty: int

    assert backward_incompatibilities(wire(Old), wire(New)) == [
        "$.qty: type changed from number to integer (number no longer accepted)"
    ]


def test_mapping_value_type_change_is_reported() -> None:
    class Old(BaseModel):
        counts: dict[str, int]

    class New(BaseModel):
        counts: dict[str, str]

    assert backward_incompatibilities(wire(Old), wire(New)) == [
        "$.counts.*: type changed from integer to string (integer no longer accepted)"
    ]


def test_changed_string_format_is_reported() -> None:
    old = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}
    new = {"type": "object", "properties": {"at": {"type": "string", "format": "date"}}}
    assert backward_incompatibilities(old, new) == ["$.at: format changed from date-time to date"]


class Node(BaseModel):
    name: str
    child: Node | None = None


class NodeRenamed(BaseModel):
    label: str
    child: NodeRenamed | None = None


def test_recursive_models_terminate() -> None:
    assert backward_incompatibilities(wire(Node), wire(Node)) == []
    assert "$.name: property removed" in backward_incompatibilities(wire(Node), wire(NodeRenamed))


def test_nested_model_in_optional_union_is_compared() -> None:
    class Old(BaseModel):
        line: Line | None = None

    class New(BaseModel):
        line: LineQtyRetyped | None = None

    problems = backward_incompatibilities(wire(Old), wire(New))
    assert problems == [
        "$.line.qty: type changed from integer to string (integer no longer accepted)"
    ]
