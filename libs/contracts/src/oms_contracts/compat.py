"""Is a new JSON Schema of an event backward compatible with the old one?

Consumers parse payloads with pydantic models configured ``extra="ignore"``, so the rules
are about what an existing reader or existing data can no longer cope with:

* incompatible: a property removed (readers of the old version still expect it); a
  property's type changed so that it no longer accepts everything the old one accepted
  (``string -> integer``, ``number|string -> string``, ``nullable -> non-nullable``, a
  ``format`` changed or added); a new required property or a property that became
  required (messages already on the topic lack it); enum/``Literal`` values removed.
* compatible: a new optional property, a required property made optional, a type
  widened (``integer -> number``, ``string -> string|null``), enum values added,
  titles/descriptions/defaults changed, unknown properties (ignored by readers).

Value constraints (``minimum``, ``maxLength``, ``pattern`` ...) are deliberately not
compared: they are producer-side validation, and comparing them well is out of
proportion to what they protect. Only local ``$ref`` (``#/...``) is supported, which is
all pydantic emits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JsonSchema = dict[str, Any]

#: JSON Schema type names, in the order used when describing a union.
_KINDS = ("string", "integer", "number", "boolean", "object", "array", "null")


@dataclass(frozen=True)
class _Variant:
    """One alternative of a (possibly union) schema, with exactly one JSON type.

    ``kind`` is ``"any"`` for a schema without a type (e.g. ``Any``); ``ref`` remembers
    the ``$ref`` the variant came from so recursive models are compared only once.
    """

    kind: str
    schema: JsonSchema
    ref: str | None = None


def backward_incompatibilities(old: JsonSchema, new: JsonSchema) -> list[str]:
    """Every way ``new`` breaks readers or data of ``old``, as ``"<json path>: <why>"``.

    An empty list means ``new`` may replace ``old`` under the same schema version.
    """
    return _Comparer(old, new).run()


class _Comparer:
    def __init__(self, old_root: JsonSchema, new_root: JsonSchema) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.problems: list[str] = []
        # (old $ref, new $ref) pairs already compared: recursive models would loop.
        self._seen_refs: set[tuple[str, str]] = set()

    def run(self) -> list[str]:
        self._compare(self.old_root, self.new_root, "$")
        return self.problems

    def _report(self, path: str, why: str) -> None:
        self.problems.append(f"{path}: {why}")

    def _compare(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        old_variants = _variants(old, self.old_root)
        new_variants = _variants(new, self.new_root)
        if any(v.kind == "any" for v in new_variants):
            return  # the new schema accepts anything
        if any(v.kind == "any" for v in old_variants):
            self._report(path, f"type narrowed from any to {_describe(new_variants)}")
            return
        lost = [ov.kind for ov in old_variants if not _candidates(ov, new_variants)]
        if lost:
            self._report(
                path,
                f"type changed from {_describe(old_variants)} to {_describe(new_variants)}"
                f" ({'|'.join(dict.fromkeys(lost))} no longer accepted)",
            )
        for ov in old_variants:
            candidates = _candidates(ov, new_variants)
            if candidates:
                self._compare_same_kind(ov, _best_match(ov, candidates), path)

    def _compare_same_kind(self, old: _Variant, new: _Variant, path: str) -> None:
        old_values, new_values = _enum_values(old.schema), _enum_values(new.schema)
        if new_values is not None:
            if old_values is None:
                self._report(path, f"restricted to enum values {', '.join(sorted(new_values))}")
            elif removed := old_values - new_values:
                self._report(path, f"enum values removed: {', '.join(sorted(removed))}")
        old_format, new_format = old.schema.get("format"), new.schema.get("format")
        if old.kind == new.kind == "string" and new_format and new_format != old_format:
            self._report(path, f"format changed from {old_format or 'none'} to {new_format}")
        if old.kind == new.kind == "object":
            if old.ref and new.ref:
                if (old.ref, new.ref) in self._seen_refs:
                    return
                self._seen_refs.add((old.ref, new.ref))
            self._compare_object(old.schema, new.schema, path)
        elif old.kind == new.kind == "array":
            self._compare(old.schema.get("items", {}), new.schema.get("items", {}), f"{path}[*]")

    def _compare_object(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        old_props: JsonSchema = old.get("properties", {})
        new_props: JsonSchema = new.get("properties", {})
        old_required = set(old.get("required", []))
        for name, old_prop in old_props.items():
            if name not in new_props:
                self._report(f"{path}.{name}", "property removed")
            else:
                self._compare(old_prop, new_props[name], f"{path}.{name}")
        for name in new.get("required", []):
            if name not in old_props and name not in old_required:
                self._report(f"{path}.{name}", "new required property")
            elif name not in old_required:
                self._report(f"{path}.{name}", "property became required")
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if new_extra is False and old_extra is not False:
            self._report(path, "additional properties no longer allowed")
        elif isinstance(new_extra, dict):
            # Values of a mapping (dict[str, X]); an absent/true old value accepted anything.
            old_values = old_extra if isinstance(old_extra, dict) else {}
            self._compare(old_values, new_extra, f"{path}.*")


def _resolve(schema: JsonSchema, root: JsonSchema) -> tuple[JsonSchema, str | None]:
    """``schema`` with a local ``$ref`` (and single-element ``allOf``) merged in."""
    ref: str | None = None
    while True:
        if "$ref" in schema:
            ref = schema["$ref"]
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**_lookup(root, ref), **siblings}
        elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            siblings = {k: v for k, v in schema.items() if k != "allOf"}
            schema = {**schema["allOf"][0], **siblings}
        else:
            return schema, ref


def _lookup(root: JsonSchema, ref: str) -> JsonSchema:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in ref[1:].split("/")[1:]:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, dict):
        raise ValueError(f"$ref {ref!r} does not point to a schema")
    return node


def _variants(schema: JsonSchema, root: JsonSchema) -> list[_Variant]:
    """Split a schema into single-type alternatives (``anyOf``/``oneOf``/type lists)."""
    schema, ref = _resolve(schema, root)
    union = schema.get("anyOf") or schema.get("oneOf")
    if union:
        return [v for member in union for v in _variants(member, root)]
    kind = schema.get("type")
    if isinstance(kind, list):
        return [_Variant(k, {**schema, "type": k}, ref) for k in kind]
    if isinstance(kind, str):
        return [_Variant(kind, schema, ref)]
    values = _enum_list(schema)
    if values is not None:
        by_kind: dict[str, list[Any]] = {}
        for value in values:
            by_kind.setdefault(_kind_of(value), []).append(value)
        return [_Variant(k, {**schema, "enum": vs}, ref) for k, vs in by_kind.items()]
    return [_Variant("any", schema, ref)]


def _candidates(old: _Variant, new_variants: list[_Variant]) -> list[_Variant]:
    """The new variants able to hold every value of ``old`` (a number holds an integer)."""
    return [
        v for v in new_variants if v.kind == old.kind or (old.kind, v.kind) == ("integer", "number")
    ]


def _best_match(old: _Variant, candidates: list[_Variant]) -> _Variant:
    """Among same-kind alternatives (a union of models), the one with the same title."""
    title = old.schema.get("title")
    return next((c for c in candidates if c.schema.get("title") == title), candidates[0])


def _enum_list(schema: JsonSchema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _enum_values(schema: JsonSchema) -> set[str] | None:
    """The allowed values as canonical JSON text (hashable), or None when unrestricted."""
    values = _enum_list(schema)
    return None if values is None else {json.dumps(v, sort_keys=True) for v in values}


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _describe(variants: list[_Variant]) -> str:
    kinds = {v.kind for v in variants}
    return "|".join(k for k in (*_KINDS, "any") if k in kinds)
