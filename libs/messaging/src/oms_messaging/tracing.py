"""Trace context across Kafka: W3C ``traceparent`` in message headers.

The context of the work that emits an event (an HTTP request, a consumed event) is
written into the outbox row and travels as Kafka headers; the consumer continues the
trace from them, so one order's path through every service is one trace. With no
OpenTelemetry SDK configured (the default) the API is a no-op and no header is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context

tracer = trace.get_tracer("oms_messaging")

_TRACE_HEADERS = ("traceparent", "tracestate", "baggage")


def current_trace_headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    carrier = {
        key: value.decode(errors="replace")
        for key, value in (headers or ())
        if key in _TRACE_HEADERS and value is not None
    }
    return propagate.extract(carrier)
