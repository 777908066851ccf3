"""OpenTelemetry for the services: off by default, on with the standard ``OTEL_*`` variables.

Set ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_TRACES_EXPORTER=otlp|console``) to export;
``OTEL_SERVICE_NAME`` and the other standard variables are honoured by the SDK. Each HTTP
request gets a server span continuing the caller's ``traceparent``; Kafka hops continue
the trace through message headers (see ``oms_messaging.tracing``).
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from oms_messaging.tracing import tracing_enabled
from oms_servicekit.asgi import ASGIApp, Receive, ResponseStatus, Scope, Send

tracer = trace.get_tracer("oms_servicekit")


def configure_tracing(service: str) -> bool:
    """Install an SDK tracer provider when the environment asks for an exporter."""
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if exporter_name in ("", "none") and not endpoint:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def install_tracing(app: FastAPI) -> None:
    app.add_middleware(ServerSpanMiddleware)


class ServerSpanMiddleware:
    """A server span per request, continuing the caller's trace (W3C headers), named
    after the route template once the route is known."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing_enabled():
            await self.app(scope, receive, send)
            return
        carrier = {
            bytes(k).decode("latin-1"): bytes(v).decode("latin-1")
            for k, v in scope.get("headers") or ()
        }
        method, path = scope["method"], scope["path"]
        status = ResponseStatus(send)
        with tracer.start_as_current_span(
            f"{method} {path}", context=propagate.extract(carrier), kind=SpanKind.SERVER
        ) as span:
            await self.app(scope, receive, status.send)
            route = scope.get("route")
            if route is not None:
                span.update_name(f"{method} {getattr(route, 'path', path)}")
            span.set_attribute("http.response.status_code", status.code)
            if status.code >= 500:
                span.set_status(Status(StatusCode.ERROR))
