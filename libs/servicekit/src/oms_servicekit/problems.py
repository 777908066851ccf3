"""Errors as RFC 9457 problem+json, naming the field at fault.

Every 4xx and 5xx of every service has this shape, so clients handle one format.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from oms_messaging.errors import is_transient

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


async def send_problem(
    send: Send,
    scope: Scope,
    status: int,
    detail: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with a problem+json from ASGI middleware (before any route runs)."""
    body = json.dumps(
        {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "instance": str(scope.get("path", "")),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Problem(Exception):
    """An error to answer as problem+json; raise it from routers or application code."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.field = field
        self.headers = headers
        self.extra = extra


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts)


#: SQLSTATEs of values the database cannot store: character_not_in_repertoire (NUL),
#: untranslatable_character, numeric_value_out_of_range, string_data_right_truncation.
_UNSTORABLE_TEXT = {"22021", "22P05", "22003", "22001"}


def is_unstorable_text(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is text the database cannot take, or a value
    the driver cannot encode for it (an integer beyond bigint, a date before year 1 once
    in UTC: an ``OverflowError`` under a database error; the API fuzzer found both)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    through_driver = False
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UnicodeError):
            return True
        if isinstance(current, OverflowError) and through_driver:
            return True
        orig = getattr(current, "orig", None)
        through_driver = through_driver or orig is not None
        if getattr(orig, "sqlstate", None) in _UNSTORABLE_TEXT:
            return True
        if getattr(current, "sqlstate", None) in _UNSTORABLE_TEXT:
            return True
        if isinstance(orig, BaseException) and isinstance(orig.__cause__, UnicodeError):
            return True
        current = current.__cause__ or current.__context__
    return False


#: Every operation may answer these with problem+json (auth, validation, conflicts, size,
#: media type, rate limits, an unavailable database).
PROBLEM_STATUSES = {
    "400": "Bad request",
    "401": "No or invalid credentials",
    "403": "Not allowed",
    "404": "Not found",
    "409": "Conflicts with the current state",
    "413": "Body too large",
    "415": "Unsupported media type",
    "422": "Invalid request (the field at fault is named)",
    "429": "Too many requests (see Retry-After)",
    "503": "Temporarily unavailable; nothing was changed (see Retry-After)",
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details, with the field at fault where there is one.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "errors": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the service does: every error is problem+json.

    FastAPI documents 422 as its own JSON shape; clients (and the API fuzzing tests) must
    see the problem+json our handlers really send, for every 4xx an operation can give.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                for code, description in PROBLEM_STATUSES.items():
                    entry = responses.setdefault(code, {"description": description})
                    entry["content"] = content
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
        return problem_response(
            exc.status,
            exc.detail,
            title=exc.title,
            instance=request.url.path,
            headers=exc.headers,
            field=exc.field,
            errors=errors,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        # Logged without the rejected values: they may hold personal data.
        log.info(
            "request rejected",
            extra={"path": request.url.path, "fields": [e["field"] for e in errors]},
        )
        first = errors[0]["field"] if errors else None
        return problem_response(
            422,
            f"invalid value for {first}" if first else "invalid request",
            title="Request validation failed",
            instance=request.url.path,
            field=first,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code,
            str(exc.detail),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_unstorable_text(exc):
            # A NUL or an unpaired surrogate reached the database: refused, nothing stored.
            log.info("request rejected: unstorable text", extra={"path": request.url.path})
            return problem_response(
                422,
                "a value cannot be stored: out of range, too long, or text with NUL or"
                " unpaired surrogates",
                title="Request validation failed",
                instance=request.url.path,
            )
        if is_transient(exc):
            # The database is unreachable or overloaded: nothing was changed, try again.
            log.warning(
                "request failed on an unavailable dependency",
                extra={"path": request.url.path, "error": type(exc).__name__},
            )
            return problem_response(
                503,
                "a dependency is temporarily unavailable; nothing was changed, retry later",
                instance=request.url.path,
                headers={"Retry-After": "1"},
            )
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(500, "internal error", instance=request.url.path)

    # Database and text-encoding errors get their own registrations: those are answered
    # by the exception middleware (a 4xx or a 503 is an answer, not a crash), while the
    # catch-all below is answered by the server-error middleware, which re-raises.
    app.add_exception_handler(DBAPIError, _unexpected)  # type: ignore[arg-type]
    app.add_exception_handler(UnicodeError, _unexpected)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
