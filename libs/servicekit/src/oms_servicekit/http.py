"""The FastAPI app every service is: health, readiness, correlation ids, problems."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.datastructures import MutableHeaders

from oms_messaging.context import correlation_id_var
from oms_servicekit.asgi import ASGIApp, Message, Receive, Scope, Send, header
from oms_servicekit.auth import Authenticator, AuthSettings, current_principal
from oms_servicekit.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware
from oms_servicekit.metrics import ScrapeQuery, install_metrics
from oms_servicekit.problems import document_problems, install_problem_handlers
from oms_servicekit.rate_limit import PerTokenRateLimitMiddleware, RateLimitSettings
from oms_servicekit.runtime import ServiceRuntime
from oms_servicekit.tracing import install_tracing

CORRELATION_HEADER = "X-Correlation-Id"


class CorrelationMiddleware:
    """The caller's correlation id (or a new one) for everything the request does, and
    echoed on the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header(scope, CORRELATION_HEADER) or ""
        cid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else str(uuid.uuid4())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HEADER] = cid
            await send(message)

        token = correlation_id_var.set(cid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id_var.reset(token)


class DocsSettings(BaseSettings):
    """``API_DOCS``: serve ``/docs`` and ``/openapi.json``. Unset: on in ``AUTH_MODE=dev``,
    off in ``jwt`` (production keeps the map of its doors to itself)."""

    model_config = SettingsConfigDict(extra="ignore")

    api_docs: bool | None = None

    def enabled(self, auth_mode: str) -> bool:
        return self.api_docs if self.api_docs is not None else auth_mode == "dev"


async def require_operator(
    request: Request,
    x_operator: Annotated[
        str | None, Header(description="Who performs this action (AUTH_MODE=dev)")
    ] = None,
) -> str:
    """The identity an operator action must carry: the bearer token's subject
    (AUTH_MODE=jwt) or the X-Operator header (AUTH_MODE=dev). 401 without one."""
    principal = await current_principal(request)
    return principal.subject


def create_app(
    *,
    title: str,
    runtime: ServiceRuntime,
    routers: list[APIRouter],
    on_started: Callable[[], Awaitable[None]] | None = None,
    metrics: list[ScrapeQuery] | None = None,
    authenticator: Authenticator | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_limit_exempt: tuple[str, ...] = (),
    rate_limits: RateLimitSettings | None = None,
) -> FastAPI:
    auth = authenticator or Authenticator(AuthSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        auth.announce(title)
        await runtime.start()
        if on_started is not None:
            await on_started()
        try:
            yield
        finally:
            await runtime.stop()

    docs = DocsSettings().enabled(auth.mode)
    app = FastAPI(
        title=title,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.runtime = runtime
    app.state.authenticator = auth
    install_problem_handlers(app)
    document_problems(app)
    install_metrics(app, runtime, metrics or [])
    install_tracing(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, exempt=body_limit_exempt)
    app.add_middleware(PerTokenRateLimitMiddleware, settings=rate_limits or RateLimitSettings())

    app.add_middleware(CorrelationMiddleware)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "not ready"}})
    async def readyz() -> JSONResponse:
        """The database and the broker are reachable."""
        checks = await runtime.check_ready()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    for router in routers:
        app.include_router(router)
    return app


async def get_runtime(request: Request) -> ServiceRuntime:
    """The service runtime (async: a plain function would run in a worker thread, a
    thread hand-off per request)."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


#: The service runtime, for routers: ``async with runtime.uow() as uow: ...``.
RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
#: The operator performing an operator action (required).
OperatorDep = Annotated[str, Depends(require_operator)]
