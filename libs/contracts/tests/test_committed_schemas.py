"""The committed schema files in ``libs/contracts/schemas`` against the models.

How the guards work together so an incompatible change cannot slip in under the same
``schema_version``:

1. ``test_committed_schemas_match_models`` fails whenever a model changed and the files
   were not regenerated ("run make contracts"), so the files can never silently lag.
2. ``make contracts`` (the writer) regenerates them, but refuses, writing nothing, when a
   file would change backward-incompatibly under the same version; the author has to bump
   ``schema_version``, which writes a new ``<Type>.v<N+1>.json`` and keeps the old file.
3. ``test_models_are_compatible_with_their_committed_schema`` fails on an incompatible
   model change even before anyone regenerates, with the actionable message (bump the
   version) instead of a plain drift.

The remaining loophole is deleting or hand-editing a committed file and regenerating:
that shows up as a changed schema file in review, and CI can close it mechanically with
``python -m oms_contracts.schema_export --check --against <main branch's schemas dir>``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from oms_contracts import REGISTRY, Event
from oms_contracts.compat import backward_incompatibilities
from oms_contracts.schema_export import (
    ENVELOPE_NAME,
    ENVELOPE_SCHEMA_VERSION,
    SCHEMA_DIR,
    check,
    event_schema,
    schema_filename,
)

MODELS = REGISTRY.models()
MODEL_IDS = [f"{m.event_type}.v{m.schema_version}" for m in MODELS]


def test_committed_schemas_match_models() -> None:
    problems = check(SCHEMA_DIR)
    assert not problems, (
        "libs/contracts/schemas differs from the event models; run make contracts:\n  "
        + "\n  ".join(problems)
    )


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_every_registered_event_has_a_committed_schema(model: type[Event]) -> None:
    filename = schema_filename(model.event_type, model.schema_version)
    assert (SCHEMA_DIR / filename).is_file(), f"{filename} is missing; run make contracts"


def test_envelope_has_a_committed_schema() -> None:
    filename = schema_filename(ENVELOPE_NAME, ENVELOPE_SCHEMA_VERSION)
    assert (SCHEMA_DIR / filename).is_file(), f"{filename} is missing; run make contracts"


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_models_are_compatible_with_their_committed_schema(model: type[Event]) -> None:
    filename = schema_filename(model.event_type, model.schema_version)
    path = SCHEMA_DIR / filename
    if not path.is_file():
        pytest.fail(f"{filename} is missing; run make contracts")
    committed = json.loads(path.read_text(encoding="utf-8"))
    problems = backward_incompatibilities(committed, event_schema(model))
    assert not problems, (
        f"{model.__name__} changed incompatibly with the committed {filename}; bump its "
        f"schema_version to {model.schema_version + 1} (and run make contracts) or revert:\n  "
        + "\n  ".join(problems)
    )


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("*.json")), ids=lambda p: p.name)
def test_committed_files_are_valid_draft_2020_12_schemas(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
