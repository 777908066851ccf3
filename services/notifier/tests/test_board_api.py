"""The board's HTTP side on a real database: page, JSON API, live stream, order page.

order-svc and customer-svc are stood in for by a small HTTP server on a real port, so
the board's calls (and its degrading when they fail) go over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from notifier.api.board import board_router
from notifier.api.routes import router
from notifier.board_feed import BoardFeed
from notifier.handlers import SERVICE
from notifier.settings import NotifierSettings
from oms_contracts import Event
from oms_contracts.events import (
    Address,
    CustomerIdentity,
    CustomerResolved,
    OrderCreated,
    OrderLine,
    OrderStatusChanged,
    RejectedLine,
    SlaAtRisk,
    StockRejected,
)
from oms_devstack.ports import free_port
from oms_servicekit.http import create_app
from oms_servicekit.problems import PROBLEM_JSON
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase

NOW = datetime.now(UTC)
KNOWN_CUSTOMER = uuid.uuid4()
#: Orders order-svc (the stand-in) knows, by id.
PEER_ORDERS: dict[str, dict[str, Any]] = {}


def peer_app() -> FastAPI:
    """order-svc and customer-svc as far as the board reads them."""
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def order(order_id: str) -> JSONResponse:
        if order_id not in PEER_ORDERS:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse(PEER_ORDERS[order_id])

    @app.get("/orders/{order_id}/picklist")
    async def picklist(order_id: str) -> JSONResponse:
        return JSONResponse({"detail": "boom"}, status_code=500)

    @app.get("/sla/open")
    async def open_sla(limit: int, offset: int) -> JSONResponse:
        return JSONResponse({"items": [], "total": 7, "limit": limit, "offset": offset})

    @app.get("/customers/{customer_id}/card")
    async def card(customer_id: str) -> JSONResponse:
        if customer_id != str(KNOWN_CUSTOMER):
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse(
            {
                "customer": {"id": customer_id, "display_name": "Li Lei"},
                "tags": [{"tag": "vip"}],
                "orders": {"count": 3, "value": "59.70", "cancelled": 1},
                "complaints": [{"id": 1}],
            }
        )

    return app


async def serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
async def peers() -> AsyncIterator[str]:
    server, task, url = await serve(peer_app())
    try:
        yield url
    finally:
        server.should_exit = True
        await task


def board_app(database: MigratedDatabase, peers_url: str) -> FastAPI:
    settings = NotifierSettings(
        order_svc_url=peers_url,
        customer_svc_url=peers_url,
        board_peer_timeout_s=5,
        board_stream_interval_s=0.1,
    )
    runtime = DatabaseOnlyRuntime(database, producer=SERVICE)
    return create_app(
        title=SERVICE,
        runtime=runtime,  # type: ignore[arg-type]
        routers=[router, board_router(settings)],
    )


@pytest.fixture
async def client(db, database, peers) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=board_app(database, peers))
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        yield client


def created(order_id: uuid.UUID, channel: str = "web") -> OrderCreated:
    return OrderCreated(
        order_id=order_id,
        channel=channel,
        channel_order_id=f"REF-{order_id.hex[:6]}",
        customer=CustomerIdentity(platform_user_id="u1"),
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=1, unit_price="9.90")],  # type: ignore[arg-type]
        currency="CNY",
        total="9.90",  # type: ignore[arg-type]
        shipping_address=Address(region="CN-SH"),
        created_at=NOW,
    )


def moved(order_id: uuid.UUID, to_state: str, reason: str | None = None) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        channel="web",
        from_state=None,
        to_state=to_state,
        actor="system",
        reason=reason,
        changed_at=datetime.now(UTC),
    )


async def dispatch(deliver, event: Event) -> None:
    await deliver(event)


async def test_the_page_and_its_files_are_served(client) -> None:
    page = await client.get("/board")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/board/static/board.js"' in page.text
    assert 'id="total-orders"' in page.text
    order_page = await client.get(f"/board/orders/{uuid.uuid4()}")
    assert order_page.status_code == 200 and 'id="order-view"' in order_page.text
    script = await client.get("/board/static/board.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in script.text
    css = await client.get("/board/static/board.css")
    assert css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("name", ["nope.js", "..%2Fbootstrap.py", "index.html"])
async def test_only_the_boards_files_are_served(client, name) -> None:
    response = await client.get(f"/board/static/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON


async def test_order_page_of_a_bad_id_is_a_422_naming_it(client) -> None:
    response = await client.get("/board/orders/not-an-id")
    assert response.status_code == 422
    assert response.json()["field"] == "order_id"


async def test_counts_and_exception_queue(client, deliver) -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for order_id in (a, b, c):
        await dispatch(deliver, created(order_id))
        await dispatch(deliver, moved(order_id, "received"))
    await dispatch(deliver, moved(b, "exception", "stock_rejected (SKU-1: insufficient)"))
    await dispatch(deliver, moved(c, "exception", "credit_refused (no)"))

    counts = (await client.get("/board/api/counts")).json()
    assert counts["total"] == 3
    assert counts["cells"] == {"received": {"web": 1}, "exception": {"web": 2}}
    assert counts["by_channel"] == {"web": 3}

    queue = (await client.get("/board/api/exceptions")).json()
    assert queue["total"] == 2
    assert queue["by_cause"] == {"credit_refused": 1, "stock_rejected": 1}
    assert [i["order_id"] for i in queue["items"]] == [str(b), str(c)]
    only = (await client.get("/board/api/exceptions", params={"cause": "credit_refused"})).json()
    assert [i["order_id"] for i in only["items"]] == [str(c)]
    assert only["total"] == 1 and only["by_cause"] == queue["by_cause"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/board/api/exceptions", {"cause": "bad_luck"}, "cause"),
        ("/board/api/exceptions", {"limit": "0"}, "limit"),
        ("/board/api/sla", {"limit": "201"}, "limit"),
        ("/board/api/sla", {"offset": "-1"}, "offset"),
        ("/board/api/credit-degraded", {"offset": "x"}, "offset"),
    ],
)
async def test_bad_query_values_are_422_problems_naming_the_field(
    client, path, params, field
) -> None:
    response = await client.get(path, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"] == field


async def test_sla_page_has_a_countdown_in_seconds(client, deliver) -> None:
    order_id = uuid.uuid4()
    deadline = datetime.now(UTC) + timedelta(minutes=10)
    await dispatch(
        deliver,
        SlaAtRisk(
            order_id=order_id,
            channel="web",
            order_class="standard",
            stage="ship",
            deadline=deadline,
            raised_at=datetime.now(UTC),
        ),
    )
    page = (await client.get("/board/api/sla")).json()
    [item] = page["items"]
    assert item["order_id"] == str(order_id)
    assert item["sla_status"] == "at_risk"
    assert 0 < item["seconds_left"] <= 600


async def test_alerts_show_the_open_ones(client, deliver) -> None:
    order_id = uuid.uuid4()
    await dispatch(
        deliver,
        StockRejected(
            order_id=order_id,
            lines=[RejectedLine(line_no=1, sku="S", qty=1, reason="insufficient", available=0)],
            rejected_at=datetime.now(UTC),
        ),
    )
    body = (await client.get("/board/api/alerts")).json()
    assert body["open_total"] == 1
    [alert] = body["open"]
    assert (alert["alert_type"], alert["subject"], alert["state"]) == (
        "order_exception",
        str(order_id),
        "open",
    )
    assert body["low_stock"] == [] and body["paused_channels"] == []


async def test_order_page_combines_events_order_svc_and_the_customer_card(client, deliver) -> None:
    order_id = uuid.uuid4()
    await dispatch(deliver, created(order_id))
    await dispatch(deliver, moved(order_id, "received"))
    await dispatch(
        deliver,
        CustomerResolved(
            customer_id=KNOWN_CUSTOMER,
            order_id=order_id,
            channel="web",
            platform_user_id="u1",
            new_customer=False,
            resolved_at=NOW,
        ),
    )
    PEER_ORDERS[str(order_id)] = {"id": str(order_id), "state": "received", "history": []}

    page = (await client.get(f"/board/api/orders/{order_id}")).json()
    assert page["board"]["state"] == "received"
    assert [e["event_type"] for e in page["timeline"]] == [
        "OrderCreated",
        "OrderStatusChanged",
    ]
    assert page["order"] == {
        "available": True,
        "data": PEER_ORDERS[str(order_id)],
        "reason": None,
    }
    # order-svc answered 500 for the pick list: shown as unavailable, the page still works.
    assert page["picklist"] == {"available": False, "data": None, "reason": "answered 500"}
    customer = page["customer"]
    assert customer["available"] is True
    assert customer["data"]["name"] == "Li Lei"
    assert customer["data"]["tags"] == ["vip"]
    assert (customer["data"]["orders"], customer["data"]["complaints"]) == (3, 1)


async def test_order_page_degrades_when_the_other_services_are_down(db, database, deliver) -> None:
    order_id = uuid.uuid4()
    await dispatch(deliver, created(order_id))
    nobody = f"http://127.0.0.1:{free_port()}"
    transport = httpx.ASGITransport(app=board_app(database, nobody))
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        response = await client.get(f"/board/api/orders/{order_id}")
    assert response.status_code == 200
    page = response.json()
    assert page["board"]["channel"] == "web"
    assert page["order"]["available"] is False
    assert page["order"]["reason"].startswith("unreachable")
    assert page["customer"] == {
        "available": False,
        "data": None,
        "reason": "customer not resolved yet",
    }


async def test_open_clocks_come_from_order_svc_or_say_why_not(client, database) -> None:
    answer = (await client.get("/board/api/sla/open", params={"limit": 5, "offset": 10})).json()
    assert answer["available"] is True
    assert answer["data"] == {"items": [], "total": 7, "limit": 5, "offset": 10}

    nobody = f"http://127.0.0.1:{free_port()}"
    transport = httpx.ASGITransport(app=board_app(database, nobody))
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as down:
        answer = (await down.get("/board/api/sla/open")).json()
    assert answer["available"] is False
    assert answer["reason"].startswith("unreachable")


async def test_an_order_nobody_knows_is_a_404_problem(client) -> None:
    response = await client.get(f"/board/api/orders/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"] == "order_id"


async def test_the_feed_sends_a_new_snapshot_only_when_something_changed(
    db, database, deliver
) -> None:
    feed = BoardFeed(interval_s=0.05)
    source = DatabaseOnlyRuntime(database, producer=SERVICE)
    stream = feed.stream(source)  # type: ignore[arg-type]
    version, first = await anext(stream)
    assert first["counts"]["total"] == 0
    # Nothing changed: the same version however often it is asked.
    await asyncio.sleep(0.1)
    assert (await feed.latest(source))[0] == version  # type: ignore[arg-type]

    order_id = uuid.uuid4()
    await dispatch(deliver, created(order_id))
    async with asyncio.timeout(10):
        next_version, second = await anext(stream)
    assert next_version > version
    assert second["counts"]["total"] == 1
    assert sum(second["throughput"]["per_minute"]) == 1
    await stream.aclose()


async def test_at_50000_orders_the_board_sends_aggregates_and_pages(client, db) -> None:
    """Server-side aggregation and paging: answers stay small at 50,000 orders."""
    async with db() as session:
        await session.execute(
            text(
                """
                INSERT INTO board_orders (order_id, channel, state, state_changed_at, created_at,
                                          sla_deadline, sla_status, sla_stage)
                SELECT gen_random_uuid(), (ARRAY['web','app','live','tmall'])[1 + i % 4],
                       (ARRAY['confirmed','picking','shipped','exception'])[1 + i % 4],
                       now(), now(), now() + (i || ' seconds')::interval, 'at_risk', 'ship'
                FROM generate_series(1, 50000) AS i
                """
            )
        )
        await session.execute(
            text(
                """
                INSERT INTO board_exceptions (order_id, cause, channel, raised_at, parks_order)
                SELECT order_id, 'stock_rejected', channel, now(), true
                FROM board_orders WHERE state = 'exception'
                """
            )
        )
        await session.commit()

    counts = (await client.get("/board/api/counts")).json()
    assert counts["total"] == 50_000
    assert counts["by_state"] == {
        "confirmed": 12_500,
        "picking": 12_500,
        "shipped": 12_500,
        "exception": 12_500,
    }
    sla = (await client.get("/board/api/sla", params={"limit": 50, "offset": 100})).json()
    # "shipped" met the "ship" stage: those warnings are history.
    assert sla["total"] == 37_500 and len(sla["items"]) == 50
    deadlines = [i["sla_deadline"] for i in sla["items"]]
    assert deadlines == sorted(deadlines)
    queue = (await client.get("/board/api/exceptions", params={"limit": 20})).json()
    assert queue["total"] == 12_500 and len(queue["items"]) == 20
    snapshot = await client.get("/board/api/snapshot")
    assert snapshot.json()["counts"]["total"] == 50_000
    assert len(snapshot.content) < 32_000


async def test_the_stream_is_server_sent_events_over_http(db, database, peers, deliver):
    server, task, url = await serve(board_app(database, peers))
    try:
        async with (
            httpx.AsyncClient(base_url=url, timeout=10, trust_env=False) as http,
            http.stream("GET", "/board/stream") as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            snapshots = snapshot_events(response)
            async with asyncio.timeout(15):
                first = await anext(snapshots)
                assert first["counts"]["total"] == 0
                await dispatch(deliver, created(uuid.uuid4(), channel="app"))
                second = await anext(snapshots)
            assert second["counts"]["by_channel"] == {"app": 1}
    finally:
        server.should_exit = True
        await task


async def snapshot_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The data of each ``snapshot`` event of an SSE response."""
    event, data = None, []
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].strip())
        elif line == "" and data:
            if event == "snapshot":
                yield json.loads("\n".join(data))
            event, data = None, []
