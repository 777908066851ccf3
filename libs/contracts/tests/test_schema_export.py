"""The schema writer: stable output, wire-level schemas, drift check and refusals."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest

from oms_contracts import REGISTRY, topic_for
from oms_contracts.events import OrderPaid
from oms_contracts.schema_export import (
    SCHEMA_DIR,
    check,
    envelope_schema,
    event_schema,
    generate,
    main,
    render,
    write,
)


class OrderPaidV2(OrderPaid):
    """OrderPaid with an incompatible change, under a bumped version."""

    schema_version: ClassVar[int] = 2
    total: int  # type: ignore[assignment]


def read(path: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def with_extra_required_property(path: Path) -> None:
    """Make ``path`` look like an older schema that had a field the model lacks now."""
    schema = read(path)
    schema["properties"]["legacy"] = {"type": "string"}  # type: ignore[index]
    schema["required"].append("legacy")  # type: ignore[attr-defined]
    path.write_text(render(schema), encoding="utf-8")


def test_default_dir_is_the_contracts_schemas_folder() -> None:
    assert SCHEMA_DIR.name == "schemas"
    assert (SCHEMA_DIR.parent / "src" / "oms_contracts" / "schema_export.py").is_file()


def test_output_is_stable_and_sorted() -> None:
    first, second = generate(), generate()
    assert {k: render(v) for k, v in first.items()} == {k: render(v) for k, v in second.items()}
    text = render(first["OrderPaid.v1.json"])
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_one_file_per_registered_event_plus_envelope() -> None:
    expected = {f"{m.event_type}.v{m.schema_version}.json" for m in REGISTRY.models()}
    assert set(generate()) == expected | {"Envelope.v1.json"}


def test_event_schema_carries_routing_metadata() -> None:
    schema = event_schema(OrderPaid)
    assert schema["title"] == "OrderPaid"
    assert schema["x-event-type"] == "OrderPaid"
    assert schema["x-schema-version"] == 1
    assert schema["x-topic"] == topic_for("OrderPaid").value == "oms.orders"
    assert schema["x-key-field"] == "order_id"


def test_schema_describes_the_wire_form(order_paid: OrderPaid) -> None:
    """Serialization mode: Decimal is a string on the wire, as model_dump(mode="json")."""
    schema = event_schema(OrderPaid)
    assert schema["properties"]["total"] == {"title": "Total", "type": "string"}
    assert isinstance(order_paid.model_dump(mode="json")["total"], str)
    assert order_paid.total == Decimal("25.00")
    # fields with defaults may be absent: readers fill the default
    assert "warehouse" not in schema["required"]


def test_envelope_requires_every_field() -> None:
    schema = envelope_schema()
    assert set(schema["required"]) == set(schema["properties"])
    assert {"event_id", "occurred_at", "causation_id"} <= set(schema["required"])


def test_check_reports_missing_files_and_writes_nothing(tmp_path: Path) -> None:
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert list(tmp_path.iterdir()) == []
    assert "missing: OrderPaid.v1.json" in check(tmp_path)


def test_write_then_check_is_clean(tmp_path: Path) -> None:
    assert main(["--dir", str(tmp_path)]) == 0
    assert check(tmp_path) == []
    assert main(["--check", "--dir", str(tmp_path)]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert main(["--dir", str(tmp_path)]) == 0  # idempotent
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_check_reports_a_changed_file(tmp_path: Path) -> None:
    write(tmp_path)
    path = tmp_path / "OrderPaid.v1.json"
    schema = read(path)
    schema["description"] = "edited by hand"
    path.write_text(render(schema), encoding="utf-8")
    assert check(tmp_path) == ["differs: OrderPaid.v1.json"]


def test_writer_refuses_an_incompatible_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path)
    path = tmp_path / "OrderPaid.v1.json"
    with_extra_required_property(path)
    (tmp_path / "Envelope.v1.json").unlink()
    edited = path.read_bytes()

    assert main(["--dir", str(tmp_path)]) == 1

    assert path.read_bytes() == edited, "the committed file must not be overwritten"
    assert not (tmp_path / "Envelope.v1.json").exists(), "all or nothing: nothing written"
    err = capsys.readouterr().err
    assert "refusing to write" in err
    assert "$.legacy: property removed" in err
    assert "bump schema_version of OrderPaid to 2" in err
    # --check says the same, so CI fails with the actionable message too
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert "incompatible: OrderPaid.v1.json" in capsys.readouterr().err


def test_writer_overwrites_a_compatible_change(tmp_path: Path) -> None:
    write(tmp_path)
    path = tmp_path / "OrderPaid.v1.json"
    schema = read(path)
    del schema["properties"]["warehouse"]  # type: ignore[attr-defined]
    path.write_text(render(schema), encoding="utf-8")  # as if warehouse were new

    assert main(["--dir", str(tmp_path)]) == 0
    assert read(path) == event_schema(OrderPaid)


def test_version_bump_writes_a_new_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    write(tmp_path)
    v1 = (tmp_path / "OrderPaid.v1.json").read_bytes()
    others = [m for m in REGISTRY.models() if m is not OrderPaid]

    plan = write(tmp_path, generate([*others, OrderPaidV2]))

    assert not plan.refused
    assert plan.to_write == {"OrderPaid.v2.json": render(event_schema(OrderPaidV2))}
    assert (tmp_path / "OrderPaid.v1.json").read_bytes() == v1
    assert check(tmp_path, generate([*others, OrderPaidV2])) == [], "v1 is history, not stale"


def test_unknown_files_are_reported_as_stale_and_never_deleted(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "Retired.v1.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "OrderPaid.v7.json").write_text("{}\n", encoding="utf-8")  # above current

    assert main(["--dir", str(tmp_path)]) == 1
    assert (tmp_path / "Retired.v1.json").exists()
    assert [line.split(" ")[1] for line in check(tmp_path)] == [
        "OrderPaid.v7.json",
        "Retired.v1.json",
    ]


def test_baseline_catches_a_regenerated_incompatible_change(tmp_path: Path) -> None:
    """Deleting the committed file and regenerating still fails against the baseline."""
    base, current = tmp_path / "base", tmp_path / "current"
    write(base)
    with_extra_required_property(base / "OrderPaid.v1.json")
    write(current)

    assert check(current) == []
    problems = check(current, baseline_dir=base)
    assert len(problems) == 1 and problems[0].startswith("incompatible: OrderPaid.v1.json")
    assert main(["--check", "--dir", str(current), "--against", str(base)]) == 1


def test_baseline_history_must_not_be_deleted(tmp_path: Path) -> None:
    base, current = tmp_path / "base", tmp_path / "current"
    others = [m for m in REGISTRY.models() if m is not OrderPaid]
    write(base)
    write(current)
    write(base, generate([*others, OrderPaidV2]))
    write(current, generate([*others, OrderPaidV2]))
    (current / "OrderPaid.v1.json").unlink()

    problems = check(current, generate([*others, OrderPaidV2]), baseline_dir=base)
    assert problems == ["deleted: OrderPaid.v1.json (published schema history must stay)"]
