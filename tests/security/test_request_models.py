"""No mass assignment: every request body of every service refuses unknown fields.

A client that sends ``state``, ``price`` or ``reserved`` next to the documented fields gets
a 422 naming the field instead of having it silently ignored or, worse, applied. Checked
on the OpenAPI documents the services really serve (built, not started).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

SERVICES = ["order_svc", "inventory_svc", "customer_svc", "channel_gateway", "notifier"]


def open_objects(openapi: dict[str, Any]) -> list[str]:
    """Request-body object schemas (reached from any operation) that accept extra keys."""
    components = openapi.get("components", {}).get("schemas", {})
    found: set[str] = set()

    def walk(schema: dict[str, Any], where: str, seen: set[str]) -> None:
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name in seen:
                return
            seen.add(name)
            schema, where = components[name], name
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in schema.get(key, []):
                walk(sub, where, seen)
        if schema.get("type") == "object" and schema.get("properties"):
            if schema.get("additionalProperties") is not False:
                found.add(where)
            for prop, sub in schema["properties"].items():
                walk(sub, f"{where}.{prop}", seen)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{where}[]", seen)

    for path, item in openapi.get("paths", {}).items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}) if isinstance(operation, dict) else {}
            for media in body.get("content", {}).values():
                walk(media.get("schema", {}), f"{method.upper()} {path}", set())
    return sorted(found)


@pytest.mark.parametrize("service", SERVICES)
def test_request_bodies_refuse_unknown_fields(service: str) -> None:
    app = importlib.import_module(f"{service}.bootstrap").build_app()
    assert open_objects(app.openapi()) == []
