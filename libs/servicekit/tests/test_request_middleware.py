"""The per-request middleware (plain ASGI): the correlation id is taken or made, seen by
the route and echoed; the latency histogram is labelled by route template and status;
the server span is named after the route template and continues the caller's trace."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from oms_messaging.context import correlation_id_var
from oms_servicekit.http import CORRELATION_HEADER, CorrelationMiddleware
from oms_servicekit.metrics import HTTP_LATENCY, LatencyMiddleware
from oms_servicekit.tracing import ServerSpanMiddleware

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> JSONResponse:
        status = 404 if thing_id == "missing" else 200
        return JSONResponse({"cid": correlation_id_var.get()}, status_code=status)

    app.add_middleware(LatencyMiddleware, service="mwtest")
    app.add_middleware(ServerSpanMiddleware)
    app.add_middleware(CorrelationMiddleware)
    return app


def observed(status: str) -> float:
    value = HTTP_LATENCY.labels("mwtest", "GET", "/things/{thing_id}", status)
    return float(value._sum.get())  # type: ignore[attr-defined]


async def test_correlation_latency_and_span_per_request() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    before_ok, before_missing = observed("200"), observed("404")
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        given = await client.get(
            "/things/1", headers={CORRELATION_HEADER: "order-42", "traceparent": PARENT}
        )
        made = await client.get("/things/missing")
    assert given.json()["cid"] == "order-42" == given.headers[CORRELATION_HEADER]
    assert made.status_code == 404
    assert made.headers[CORRELATION_HEADER] == made.json()["cid"] != "order-42"
    assert observed("200") > before_ok and observed("404") > before_missing
    spans = exporter.get_finished_spans()
    if spans:  # a tracer provider set earlier in this process cannot be replaced
        named = [s for s in spans if s.name == "GET /things/{thing_id}"]
        # Ours, one per request (the framework may add its own beside it).
        assert len(named) >= 2
        traces = {format(s.context.trace_id, "032x") for s in named}
        assert PARENT.split("-")[1] in traces
