"""Validate raw Kafka message bytes against the committed JSON Schema files.

Cross-service tests read real messages with a second, independent Kafka client and check
them here, against the *committed* schemas rather than the pydantic models: the files
are what other teams rely on, so a producer that drifts from them (a float where the
contract says a decimal string, a missing field, a wrong partition key) is caught even
when the models would have accepted it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from oms_contracts.compat import JsonSchema
from oms_contracts.envelope import Envelope
from oms_contracts.schema_export import (
    ENVELOPE_NAME,
    ENVELOPE_SCHEMA_VERSION,
    SCHEMA_DIR,
    schema_filename,
)

#: Event types are used to build a file name: nothing that could walk out of the folder.
_EVENT_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: Stop listing errors after this many; the first ones are the useful ones.
_MAX_ERRORS = 10


class WireValidationError(ValueError):
    """A message does not match the committed contract; the text names event and path."""

    def __init__(
        self,
        message: str,
        *,
        event_type: str | None = None,
        schema_version: int | None = None,
        errors: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.event_type = event_type
        self.schema_version = schema_version
        #: One ``"<json path>: <reason>"`` per failing place.
        self.errors = list(errors)


class UnknownSchemaError(WireValidationError):
    """No committed schema exists for the message's event type and schema version."""


def _is_aware_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type check reports non-strings
    return datetime.fromisoformat(value).tzinfo is not None


def _format_checker() -> FormatChecker:
    """jsonschema's checkers, plus ``date-time`` (its own needs an extra package).

    RFC 3339 requires an offset: a naive timestamp on the wire is ambiguous between
    services, so it is rejected.
    """
    checker = FormatChecker()
    checker.checks("date-time", raises=ValueError)(_is_aware_datetime)
    return checker


@functools.cache
def load_schema(filename: str, schema_dir: Path = SCHEMA_DIR) -> JsonSchema:
    """A committed schema file, parsed once per process."""
    path = schema_dir / filename
    if not path.is_file():
        raise FileNotFoundError(path)
    loaded: JsonSchema = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _validator(filename: str, schema_dir: Path) -> Any:
    schema = load_schema(filename, schema_dir)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_format_checker())


def _json_path(prefix: str, parts: Iterable[object]) -> str:
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _errors(validator: Any, instance: object, prefix: str) -> list[str]:
    """Every failure as ``"<json path>: <reason>"``; a missing field gets its own path."""
    found: list[str] = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path))):
        path = _json_path(prefix, error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [name for name in error.validator_value if name not in error.instance]
            found += [f"{path}.{name}: required property is missing" for name in missing]
        else:
            found.append(f"{path}: {error.message}")
    return found


def _fail(
    what: str, errors: list[str], event_type: str | None = None, version: int | None = None
) -> WireValidationError:
    shown = errors[:_MAX_ERRORS]
    more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
    listing = "".join(f"\n  {e}" for e in shown)
    return WireValidationError(
        f"{what} does not match its committed schema:{listing}{more}",
        event_type=event_type,
        schema_version=version,
        errors=errors,
    )


def validate_wire_message(
    value: bytes | str,
    *,
    topic: str | None = None,
    key: bytes | str | None = None,
    schema_dir: Path = SCHEMA_DIR,
) -> Envelope:
    """Check one Kafka message value against the committed schemas; return its envelope.

    The envelope is checked against ``Envelope.v1.json``, the payload against
    ``<event_type>.v<schema_version>.json``. When given, ``topic`` must be the topic the
    schema declares (``x-topic``) and ``key`` the envelope's key; the envelope's key must
    always equal the payload's partition-key field (``x-key-field``), because ordering
    per aggregate depends on it. Raises :class:`WireValidationError` (or
    :class:`UnknownSchemaError`) naming the event and every failing JSON path.
    """
    try:
        message = json.loads(value)
    except ValueError as exc:
        raise WireValidationError(f"message is not JSON: {exc}") from exc

    envelope_file = schema_filename(ENVELOPE_NAME, ENVELOPE_SCHEMA_VERSION)
    if errors := _errors(_validator(envelope_file, schema_dir), message, "$"):
        raise _fail("envelope", errors)
    event_type: str = message["event_type"]
    version: int = message["schema_version"]
    what = f"{event_type} v{version}"

    filename = schema_filename(event_type, version)
    if not _EVENT_TYPE.match(event_type) or not (schema_dir / filename).is_file():
        raise UnknownSchemaError(
            f"{what}: no committed schema {filename}; unknown event type or version",
            event_type=event_type,
            schema_version=version,
        )
    schema = load_schema(filename, schema_dir)
    payload = message["payload"]
    errors = _errors(_validator(filename, schema_dir), payload, "$.payload")

    key_field = schema.get("x-key-field")
    if key_field and key_field in payload and str(payload[key_field]) != message["key"]:
        errors.append(
            f"$.key: {message['key']!r} is not the payload's {key_field} {payload[key_field]!r}"
        )
    if topic is not None and schema.get("x-topic") != topic:
        errors.append(f"(topic): published on {topic!r}, contract says {schema.get('x-topic')!r}")
    if key is not None:
        key_text = key.decode() if isinstance(key, bytes) else key
        if key_text != message["key"]:
            errors.append(f"(kafka key): {key_text!r} differs from $.key {message['key']!r}")
    if errors:
        raise _fail(what, errors, event_type, version)
    return Envelope.model_validate(message)
