"""The operations board: the page, its live stream and its JSON API.

The browser only talks to notifier: the page (``GET /board``, ``GET /board/orders/{id}``)
reads ``/board/stream`` (server-sent events: a compact snapshot whenever something
changed) and pages through ``/board/api/...``; the order page's data from order-svc and
customer-svc is fetched here and shown as unavailable when they cannot answer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from notifier.adapters.board import BoardQueries
from notifier.adapters.peers import PeerAnswer, Peers, card_summary
from notifier.api.board_schemas import (
    AlertsOut,
    CountsOut,
    CreditPage,
    ExceptionPage,
    OrderPageOut,
    PeerOut,
    SlaPage,
)
from notifier.board_feed import BoardFeed, sla_item
from notifier.domain.board import Counts
from notifier.settings import NotifierSettings
from oms_contracts.events import ExceptionCause
from oms_servicekit.auth import role_in_jwt_mode, sees_personal_data
from oms_servicekit.http import RuntimeDep
from oms_servicekit.personal_data import mask_personal_fields
from oms_servicekit.problems import Problem

#: The page's files, shipped as package data (no build step).
ASSETS = {
    "board.js": "text/javascript; charset=utf-8",
    "board.css": "text/css; charset=utf-8",
}
#: Events of one order shown on its page (the newest beyond this are in /events).
TIMELINE_LIMIT = 200

#: The board's data (its stream and JSON API) is order data: ``orders:read`` in jwt mode.
#: The page itself and its static files stay open; behind an authenticating proxy that
#: adds the operator's bearer token, the browser's calls carry it (EventSource included).
BOARD_READ = [Depends(role_in_jwt_mode("orders:read"))]
#: ``orders:read`` in jwt mode, and whether personal data in events is shown unmasked.
SeesPii = Annotated[bool, Depends(sees_personal_data("orders:read"))]

PageLimit = Annotated[int, Query(ge=1, le=200, description="Rows per page")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip")]


def _asset(name: str) -> bytes:
    return (resources.files("notifier") / "board_page" / name).read_bytes()


def board_router(settings: NotifierSettings) -> APIRouter:
    """The board's routes, reading other services at the URLs ``settings`` names."""
    router = APIRouter(tags=["board"])
    feed = BoardFeed(interval_s=settings.board_stream_interval_s)
    peers = Peers(
        order_svc_url=settings.order_svc_url,
        customer_svc_url=settings.customer_svc_url,
        timeout_s=settings.board_peer_timeout_s,
    )

    @router.get("/board", response_class=HTMLResponse)
    async def board_page() -> HTMLResponse:
        """The operations board (a web page)."""
        return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-cache"})

    @router.get("/board/orders/{order_id}", response_class=HTMLResponse)
    async def order_page(order_id: uuid.UUID) -> HTMLResponse:
        """One order on the board: timeline, routing, customer and pick list."""
        return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-cache"})

    # The page's files and its stream are for the page, not API clients (an endless
    # stream would also hang any client that walks the API description).
    @router.get("/board/static/{name}", include_in_schema=False)
    async def asset(name: Annotated[str, Path(max_length=40)]) -> Response:
        if name not in ASSETS:
            raise Problem(404, f"no such board file: {name}", field="name")
        return Response(
            _asset(name), media_type=ASSETS[name], headers={"Cache-Control": "no-cache"}
        )

    @router.get("/board/stream", dependencies=BOARD_READ, include_in_schema=False)
    async def stream(request: Request, runtime: RuntimeDep) -> EventSourceResponse:
        """Server-sent events: ``snapshot`` with the board's numbers whenever they change."""

        async def events() -> AsyncIterator[ServerSentEvent]:
            async for version, snapshot in feed.stream(runtime):
                if await request.is_disconnected():
                    return
                yield ServerSentEvent(data=json.dumps(snapshot), event="snapshot", id=str(version))

        return EventSourceResponse(events(), ping=15)

    @router.get("/board/api/snapshot", dependencies=BOARD_READ)
    async def snapshot(runtime: RuntimeDep) -> dict[str, Any]:
        """What the stream sends, once (for clients that cannot read a stream)."""
        _, current = await feed.latest(runtime)
        return current

    @router.get("/board/api/counts", dependencies=BOARD_READ, response_model=CountsOut)
    async def counts(runtime: RuntimeDep) -> CountsOut:
        """Orders per state and channel, aggregated in the database."""
        async with runtime.uow() as uow:
            c = Counts.of(await BoardQueries(uow.session).counts())
        return CountsOut(cells=c.cells, by_state=c.by_state, by_channel=c.by_channel, total=c.total)

    @router.get("/board/api/sla", dependencies=BOARD_READ, response_model=SlaPage)
    async def sla(runtime: RuntimeDep, limit: PageLimit = 50, offset: Offset = 0) -> SlaPage:
        """Orders close to or past their SLA deadline, the nearest deadline first."""
        async with runtime.uow() as uow:
            page = await BoardQueries(uow.session).sla(limit=limit, offset=offset)
        now = datetime.now(UTC)
        return SlaPage.model_validate(
            {
                "items": [sla_item(r, now) for r in page.items],
                "total": page.total,
                "limit": limit,
                "offset": offset,
            }
        )

    @router.get("/board/api/sla/open", dependencies=BOARD_READ, response_model=PeerOut)
    async def open_sla(limit: PageLimit = 10, offset: Offset = 0) -> PeerOut:
        """order-svc's running SLA clocks (every open order, nearest deadline first), or
        why they cannot be shown; the at-risk list above does not depend on it."""
        return PeerOut(**(await peers.open_sla(limit=limit, offset=offset)).as_json())

    @router.get("/board/api/exceptions", dependencies=BOARD_READ, response_model=ExceptionPage)
    async def exceptions(
        runtime: RuntimeDep,
        cause: ExceptionCause | None = None,
        limit: PageLimit = 50,
        offset: Offset = 0,
    ) -> ExceptionPage:
        """The exception queue (open exceptions, oldest first), optionally of one cause."""
        async with runtime.uow() as uow:
            queries = BoardQueries(uow.session)
            page = await queries.exceptions(cause=cause, limit=limit, offset=offset)
            by_cause = await queries.exception_stats()
        return ExceptionPage.model_validate(
            {
                "items": page.items,
                "total": page.total,
                "limit": limit,
                "offset": offset,
                "by_cause": by_cause,
            }
        )

    @router.get("/board/api/credit-degraded", dependencies=BOARD_READ, response_model=CreditPage)
    async def credit_degraded(
        runtime: RuntimeDep, limit: PageLimit = 50, offset: Offset = 0
    ) -> CreditPage:
        """Orders that went on without a credit answer (to review), newest first."""
        async with runtime.uow() as uow:
            page = await BoardQueries(uow.session).credit_degraded(limit=limit, offset=offset)
        return CreditPage.model_validate(
            {"items": page.items, "total": page.total, "limit": limit, "offset": offset}
        )

    @router.get("/board/api/alerts", dependencies=BOARD_READ, response_model=AlertsOut)
    async def board_alerts(runtime: RuntimeDep, limit: PageLimit = 20) -> AlertsOut:
        """Open alerts (newest first), low-stock SKUs and paused channels."""
        async with runtime.uow() as uow:
            queries = BoardQueries(uow.session)
            open_alerts = await queries.open_alerts(limit=limit)
            low = await queries.low_stock(limit=limit)
            paused = await queries.paused_channels(limit=limit)
        return AlertsOut.model_validate(
            {
                "open": open_alerts.items,
                "open_total": open_alerts.total,
                "low_stock": low,
                "paused_channels": paused,
            }
        )

    @router.get(
        "/board/api/orders/{order_id}",
        dependencies=BOARD_READ,
        response_model=OrderPageOut,
        responses={404: {"description": "no service knows the order"}},
    )
    async def order(order_id: uuid.UUID, runtime: RuntimeDep, pii: SeesPii) -> OrderPageOut:
        """One order: its timeline and routing (from events), and what order-svc and
        customer-svc say about it when they can answer."""
        async with runtime.uow() as uow:
            queries = BoardQueries(uow.session)
            board = await queries.order(order_id)
            order_exceptions = await queries.order_exceptions(order_id)
            timeline = await queries.order_events(order_id, limit=TIMELINE_LIMIT)
        if not pii:  # the events' own copies of the buyer's contact and address
            timeline = [e | {"payload": mask_personal_fields(e["payload"])} for e in timeline]
        detail, picklist = await asyncio.gather(peers.order(order_id), peers.picklist(order_id))
        if board is None and not timeline and not detail.available:
            raise Problem(404, f"order {order_id} is not known", field="order_id")
        customer_id = (board or {}).get("customer_id") or (detail.data or {}).get("customer_id")
        customer = (
            await peers.customer_card(uuid.UUID(str(customer_id)))
            if customer_id
            else PeerAnswer(False, reason="customer not resolved yet")
        )
        if customer.available and isinstance(customer.data, dict):
            customer = PeerAnswer(True, data=card_summary(customer.data))
        return OrderPageOut.model_validate(
            {
                "order_id": order_id,
                "board": board,
                "exceptions": order_exceptions,
                "timeline": timeline,
                "routing": (board or {}).get("routing"),
                "order": PeerOut(**detail.as_json()),
                "picklist": PeerOut(**picklist.as_json()),
                "customer": PeerOut(**customer.as_json()),
            }
        )

    return router
