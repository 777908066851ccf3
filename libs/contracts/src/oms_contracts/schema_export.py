"""Export every registered event (and the envelope) as committed JSON Schema files.

The committed files in ``libs/contracts/schemas/`` are the contract other teams, other
languages and the cross-service tests read; the pydantic models are where they come from.

Usage::

    python -m oms_contracts.schema_export            # (re)write the schema files
    python -m oms_contracts.schema_export --check    # write nothing, exit 1 on drift
    python -m oms_contracts.schema_export --check --against OLD_SCHEMAS_DIR

One file per (event type, schema version): ``<EventType>.v<N>.json``, plus
``Envelope.v1.json``. Files of older versions stay in the folder as history, so a
consumer can still validate messages already on a topic.

Schema mode: the files describe what is ON THE WIRE, i.e. what
``model_dump(mode="json")`` produces, so they are generated with
``mode="serialization"``: a ``Decimal`` is ``{"type": "string"}`` there, whereas the
validation-mode schema would say ``number|string`` (what pydantic *accepts* as input),
which would let a producer in another language send floats for money. Fields with a
default are not required in the payload schemas (pydantic's default): readers fill the
default when a field is absent, and this is what lets an optional field be added
without a version bump. The envelope is the exception: ``make_envelope`` always emits
every envelope field and consumers depend on ``event_id`` (inbox de-duplication) and
``occurred_at``, so ``Envelope.v1.json`` requires all of its fields.

Writing refuses (exit 1, nothing written) to overwrite a file with a
backward-incompatible change (see :mod:`oms_contracts.compat`): an incompatible change
needs a new ``schema_version``, which produces a new file next to the old one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from oms_contracts.compat import JsonSchema, backward_incompatibilities
from oms_contracts.envelope import Envelope, Event
from oms_contracts.registry import REGISTRY
from oms_contracts.topics import topic_for

#: The committed schema folder: ``libs/contracts/schemas`` next to ``src/``.
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

#: Version of the envelope's own shape (payload versions are per event type).
ENVELOPE_SCHEMA_VERSION = 1
ENVELOPE_NAME = "Envelope"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_FILENAME = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.json$")


def schema_filename(name: str, version: int) -> str:
    """``OrderPaid.v1.json``: one file per event type and schema version."""
    return f"{name}.v{version}.json"


def parse_schema_filename(filename: str) -> tuple[str, int] | None:
    """The (name, version) of a schema file name, or None when it is not one."""
    match = _FILENAME.match(filename)
    return (match["name"], int(match["version"])) if match else None


def event_schema(model: type[Event]) -> JsonSchema:
    """The wire schema of one event payload, with the metadata tools need to route it."""
    schema = model.model_json_schema(mode="serialization")
    schema.update(
        {
            "$schema": JSON_SCHEMA_DIALECT,
            "title": model.event_type,
            "x-event-type": model.event_type,
            "x-schema-version": model.schema_version,
            "x-topic": topic_for(model.event_type).value,
            "x-key-field": model.key_field,
        }
    )
    return schema


def envelope_schema() -> JsonSchema:
    """The wire schema of the envelope; every field is required (see module docstring)."""
    schema = Envelope.model_json_schema(mode="serialization")
    schema["required"] = list(schema["properties"])
    schema.update(
        {
            "$schema": JSON_SCHEMA_DIALECT,
            "title": ENVELOPE_NAME,
            "x-schema-version": ENVELOPE_SCHEMA_VERSION,
        }
    )
    return schema


def render(schema: JsonSchema) -> str:
    """Stable text, so regenerating unchanged models yields byte-identical files."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def generate(models: Iterable[type[Event]] | None = None) -> dict[str, JsonSchema]:
    """File name -> schema for ``models`` (default: every registered event) + envelope."""
    schemas = {schema_filename(ENVELOPE_NAME, ENVELOPE_SCHEMA_VERSION): envelope_schema()}
    for model in REGISTRY.models() if models is None else models:
        schemas[schema_filename(model.event_type, model.schema_version)] = event_schema(model)
    return schemas


@dataclass
class ExportPlan:
    """What writing would do to a schema folder, and what stands in its way."""

    #: File name -> new text, for files missing or differing compatibly.
    to_write: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)
    #: File name -> backward incompatibilities against the committed (or baseline) file.
    refused: dict[str, list[str]] = field(default_factory=dict)
    #: Files no model produces that are not older versions of a produced one either.
    stale: list[str] = field(default_factory=list)
    #: Files of the baseline folder that are gone from the folder (history deleted).
    deleted: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not (self.missing or self.differs or self.refused or self.stale or self.deleted)


def _read(path: Path) -> JsonSchema | None:
    if not path.is_file():
        return None
    try:
        loaded: JsonSchema = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # e.g. an unresolved merge conflict
        raise ValueError(f"{path.name} is not valid JSON ({exc}); restore it from git") from exc
    return loaded


def plan_export(
    schema_dir: Path, generated: Mapping[str, JsonSchema], baseline_dir: Path | None = None
) -> ExportPlan:
    """Compare ``generated`` with the files in ``schema_dir`` (and ``baseline_dir``).

    ``baseline_dir`` is an optional second folder of previously published schemas (e.g.
    the main branch's, extracted by CI): compatibility is then also checked against it,
    which catches an incompatible change whose committed file was deleted or hand-edited.
    """
    plan = ExportPlan()
    for filename, schema in sorted(generated.items()):
        text = render(schema)
        current = _read(schema_dir / filename)
        if current is None:
            plan.missing.append(filename)
        elif render(current) != text:
            plan.differs.append(filename)
        previous = [current, _read(baseline_dir / filename) if baseline_dir else None]
        problems = [
            p
            for old in previous
            if old is not None
            for p in backward_incompatibilities(old, schema)
        ]
        if problems:
            plan.refused[filename] = list(dict.fromkeys(problems))
        elif current is None or filename in plan.differs:
            plan.to_write[filename] = text

    latest: dict[str, int] = {}
    for name, version in filter(None, map(parse_schema_filename, generated)):
        latest[name] = max(version, latest.get(name, 0))

    def kept(filename: str) -> bool:
        """Produced now, or an older version of a produced type (kept as history)."""
        parsed = parse_schema_filename(filename)
        return filename in generated or (
            parsed is not None and parsed[1] < latest.get(parsed[0], 0)
        )

    if schema_dir.is_dir():
        plan.stale = sorted(p.name for p in schema_dir.glob("*.json") if not kept(p.name))
    if baseline_dir is not None and baseline_dir.is_dir():
        plan.deleted = sorted(
            p.name
            for p in baseline_dir.glob("*.json")
            if kept(p.name) and not (schema_dir / p.name).is_file() and p.name not in generated
        )
    return plan


def _bump_hint(filename: str) -> str:
    parsed = parse_schema_filename(filename)
    if parsed is None or parsed[0] == ENVELOPE_NAME:
        return "bump the envelope version"
    name, version = parsed
    return (
        f"bump schema_version of {name} to {version + 1} (writes "
        f"{schema_filename(name, version + 1)}, keeps {filename}) or revert the change"
    )


def describe(plan: ExportPlan) -> list[str]:
    """One human-readable line (or block) per problem of ``plan``."""
    lines = [f"missing: {f}" for f in plan.missing]
    lines += [f"differs: {f}" for f in plan.differs if f not in plan.refused]
    for filename, problems in plan.refused.items():
        details = "".join(f"\n      {p}" for p in problems)
        lines.append(
            f"incompatible: {filename} changed incompatibly under the same schema version;"
            f" {_bump_hint(filename)}:{details}"
        )
    lines += [
        f"stale: {f} (no registered model produces it; delete it if the event was retired)"
        for f in plan.stale
    ]
    lines += [f"deleted: {f} (published schema history must stay)" for f in plan.deleted]
    return lines


def check(
    schema_dir: Path = SCHEMA_DIR,
    generated: Mapping[str, JsonSchema] | None = None,
    baseline_dir: Path | None = None,
) -> list[str]:
    """Problems of the committed files; empty when they match the models exactly."""
    return describe(
        plan_export(schema_dir, generate() if generated is None else generated, baseline_dir)
    )


def write(
    schema_dir: Path = SCHEMA_DIR,
    generated: Mapping[str, JsonSchema] | None = None,
    baseline_dir: Path | None = None,
) -> ExportPlan:
    """Write the missing/changed files of the plan, unless any change is refused.

    All or nothing: if any file would change incompatibly (``plan.refused``), nothing is
    written, so a refused run never leaves the folder half-regenerated. Otherwise every
    file in ``plan.to_write`` has been written. Stale files are reported, never deleted:
    retiring an event type is a decision for a person.
    """
    plan = plan_export(schema_dir, generate() if generated is None else generated, baseline_dir)
    if plan.refused:
        return plan
    schema_dir.mkdir(parents=True, exist_ok=True)
    for filename, text in plan.to_write.items():
        (schema_dir / filename).write_text(text, encoding="utf-8")
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m oms_contracts.schema_export",
        description="Write (or --check) the JSON Schema files of every registered event.",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on drift")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="schema folder")
    parser.add_argument(
        "--against",
        type=Path,
        default=None,
        metavar="DIR",
        help="also check compatibility against previously published schemas in DIR",
    )
    args = parser.parse_args(argv)
    schema_dir: Path = args.dir
    if args.check:
        problems = check(schema_dir, baseline_dir=args.against)
        if problems:
            print(
                f"{schema_dir} is out of date with the models (run make contracts):",
                file=sys.stderr,
            )
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            return 1
        print(f"{schema_dir}: up to date")
        return 0
    plan = write(schema_dir, baseline_dir=args.against)
    if plan.refused:
        print(f"{schema_dir}: refusing to write, nothing was written:", file=sys.stderr)
        for line in describe(plan):
            print(f"  {line}", file=sys.stderr)
        return 1
    for filename in plan.to_write:
        print(f"wrote {schema_dir / filename}")
    leftover = describe(ExportPlan(stale=plan.stale, deleted=plan.deleted))
    if leftover:
        print(f"{schema_dir}: needs a decision by hand:", file=sys.stderr)
        for line in leftover:
            print(f"  {line}", file=sys.stderr)
        return 1
    if not plan.to_write:
        print(f"{schema_dir}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
