"""The pull connector against a fake TOP-style marketplace that is a real HTTP server.

The fake signs nothing but checks our signature, pages orders changed in a window, and
misbehaves on purpose: a 429 with Retry-After, a 500 and a page slower than the client's
timeout, each once. A run killed in the middle of a page resumes from the saved cursor
without a gap or a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channel_gateway import pull
from channel_gateway.adapters.repository import Channel, GatewayRepository
from channel_gateway.domain.config import ChannelSettings, PullConfig
from channel_gateway.pull import (
    TIME_FORMAT,
    MarketplaceClient,
    PullScheduler,
    pull_channel,
    top_sign,
)
from oms_servicekit.testing import MigratedDatabase

SECRET = "top-app-secret-1"
PAGE_SIZE = 5


class FakeMarketplace:
    def __init__(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        self.trades: list[dict[str, Any]] = [
            self.trade(i, now - timedelta(minutes=60 - i)) for i in range(23)
        ]
        self.requests: Counter[int] = Counter()
        self.misbehave = {2: "429", 3: "500", 4: "slow"}
        self.bad_signatures = 0

    @staticmethod
    def trade(i: int, modified: datetime, status: str = "WAIT_SELLER_SEND_GOODS") -> dict[str, Any]:
        return {
            "tid": 4_000_000_000 + i,
            "status": status,
            "modified": modified.strftime(TIME_FORMAT),
            "pay_time": modified.strftime(TIME_FORMAT),
            "buyer_open_uid": f"AAH{i:04d}",
            "receiver_name": "张三",
            "receiver_mobile": "13800000000",
            "receiver_state": "浙江省",
            "receiver_city": "杭州市",
            "receiver_address": "文一西路969号",
            "receiver_zip": "310000",
            "buyer_message": "请尽快发货",
            "orders": [{"outer_sku_id": "TB-SKU-1", "num": 2, "price": "59.90"}],
        }

    async def router(self, request: Request) -> JSONResponse:
        params = dict(request.query_params)
        if params.get("sign") != top_sign(params, SECRET, params.get("sign_method", "md5")):
            self.bad_signatures += 1
            return JSONResponse({"error_response": {"code": 25, "msg": "Invalid signature"}})
        page_no = int(params["page_no"])
        self.requests[page_no] += 1
        trick = self.misbehave.pop(page_no, None)
        if trick == "429":
            return JSONResponse(
                {"error": "slow down"}, status_code=429, headers={"Retry-After": "0"}
            )
        if trick == "500":
            return JSONResponse({"error": "boom"}, status_code=500)
        if trick == "slow":
            await asyncio.sleep(3)
        start = datetime.strptime(params["start_modified"], TIME_FORMAT).replace(tzinfo=UTC)
        end = datetime.strptime(params["end_modified"], TIME_FORMAT).replace(tzinfo=UTC)
        size = int(params["page_size"])

        def modified(t: dict[str, Any]) -> datetime:
            return datetime.strptime(t["modified"], TIME_FORMAT).replace(tzinfo=UTC)

        window = sorted((t for t in self.trades if start <= modified(t) <= end), key=modified)
        page = window[(page_no - 1) * size : page_no * size]
        return JSONResponse(
            {
                "trades_sold_increment_get_response": {
                    "total_results": len(window),
                    "has_next": page_no * size < len(window),
                    "trades": {"trade": page},
                }
            }
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def marketplace() -> AsyncIterator[tuple[FakeMarketplace, str]]:
    fake = FakeMarketplace()
    app = Starlette(routes=[Route("/router/rest", fake.router)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield fake, f"http://127.0.0.1:{port}/router/rest"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def pull_channel_of(gdb: MigratedDatabase, url: str) -> Channel:
    config = PullConfig(
        base_url=url,  # type: ignore[arg-type]
        app_key="12345678",
        session="seller-session",
        page_size=PAGE_SIZE,
        overlap_s=600,
        initial_lookback_s=2 * 3600,
        timeout_s=2,
        interval_s=0.05,
    )
    channel = Channel("taobao", "pull", SECRET, ChannelSettings(type="pull", pull=config))
    async with gdb.uow() as uow:
        repo = GatewayRepository(uow.session)
        await repo.add_channel(channel)
        await repo.replace_sku_map("taobao", {"TB-SKU-1": "SKU-1"})
        await uow.commit()
    return channel


def client_for(http: httpx.AsyncClient, channel: Channel) -> MarketplaceClient:
    assert channel.settings.pull is not None
    return MarketplaceClient(http, channel.settings.pull, SECRET, backoff_s=0.01, max_backoff_s=0.1)


async def received(gdb: MigratedDatabase) -> Counter[str]:
    return Counter(
        row["envelope"].payload["channel_order_id"]
        for row in await gdb.outbox_rows()
        if row["envelope"].event_type == "OrderReceived"
    )


async def cursor(gdb: MigratedDatabase) -> datetime | None:
    async with gdb.uow() as uow:
        return await GatewayRepository(uow.session).pull_cursor("taobao")


async def test_a_run_killed_mid_page_resumes_without_gaps_or_duplicates(
    gdb: MigratedDatabase,
    marketplace: tuple[FakeMarketplace, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = marketplace
    channel = await pull_channel_of(gdb, url)
    real_ingest = pull.ingest
    calls = 0

    async def dying_ingest(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2 * PAGE_SIZE + 3:  # the third trade of page 3
            raise RuntimeError("process killed")
        return await real_ingest(*args, **kwargs)

    monkeypatch.setattr(pull, "ingest", dying_ingest)
    async with httpx.AsyncClient() as http:
        with pytest.raises(RuntimeError, match="killed"):
            await pull_channel(gdb.uow, channel, client_for(http, channel))
    assert await cursor(gdb) is None  # not moved: the run did not finish
    assert sum((await received(gdb)).values()) == 2 * PAGE_SIZE  # pages 1-2 committed
    monkeypatch.setattr(pull, "ingest", real_ingest)

    # "restart": new client objects, the same database
    async with httpx.AsyncClient() as http:
        report = await pull_channel(gdb.uow, channel, client_for(http, channel))
    seen = await received(gdb)
    assert len(seen) == 23 and set(seen.values()) == {1}
    assert report.accepted == 13 and report.duplicate == 10
    assert fake.requests[2] >= 2 and fake.requests[3] >= 2  # the 429 and 500 were retried
    assert fake.requests[4] >= 2  # the slow page timed out once
    assert fake.bad_signatures == 0
    first_cursor = await cursor(gdb)
    assert first_cursor is not None

    # Later: one new order, one cancelled; the overlapping window re-reads old ones.
    now = datetime.now(UTC)
    fake.trades.append(fake.trade(100, now))
    fake.trades[0] = fake.trade(0, now, status="TRADE_CLOSED")
    async with httpx.AsyncClient() as http:
        report = await pull_channel(gdb.uow, channel, client_for(http, channel))
    assert report.accepted == 1 and report.updated == 1
    seen = await received(gdb)
    assert len(seen) == 24 and set(seen.values()) == {1}
    types = Counter(row["envelope"].event_type for row in await gdb.outbox_rows())
    assert types == {"OrderReceived": 24, "ChannelOrderUpdated": 1}
    later = await cursor(gdb)
    assert later is not None and later > first_cursor
    lines = next(
        row["envelope"].payload["lines"]
        for row in await gdb.outbox_rows()
        if row["envelope"].event_type == "OrderReceived"
    )
    assert lines[0]["sku"] == "SKU-1" and lines[0]["unit_price"] == "59.90"


async def test_the_periodic_job_pulls_each_pull_channel(
    gdb: MigratedDatabase, marketplace: tuple[FakeMarketplace, str]
) -> None:
    fake, url = marketplace
    fake.misbehave.clear()
    await pull_channel_of(gdb, url)
    scheduler = PullScheduler(gdb.uow)
    await scheduler.tick()
    assert len(await received(gdb)) == 23
    assert await cursor(gdb) is not None
