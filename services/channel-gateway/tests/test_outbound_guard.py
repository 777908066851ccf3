"""A pull channel's marketplace URL is an operator's word: it passes the outbound policy
when configured (422 naming ``pull.base_url``, nothing stored) and again before every
pull (a refused pull sends nothing, and is counted and audited). The marketplace here is
a real HTTP server on loopback, which the default (development) policy allows."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channel_gateway.adapters.repository import Channel, GatewayRepository
from channel_gateway.api.routes import build_router
from channel_gateway.bootstrap import SERVICE
from channel_gateway.domain.config import ChannelSettings, PullConfig
from channel_gateway.pull import PullScheduler
from channel_gateway.settings import GatewaySettings
from oms_servicekit.http import create_app
from oms_servicekit.outbound import OutboundPolicy, parse_networks
from oms_servicekit.problems import PROBLEM_JSON
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase

SECRET = "top-app-secret-1"
#: Production's policy: loopback is blocked like any other internal address.
STRICT = OutboundPolicy(allowed=parse_networks([]))


def pull_channel_body(name: str, base_url: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "pull",
        "secret": SECRET,
        "pull": {"base_url": base_url, "app_key": "12345678", "interval_s": 0.05},
    }


def assert_problem(response: httpx.Response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fe80::1]/router/rest",
        "http://[::ffff:169.254.169.254]/",
        "http://user:pw@gw.example.com/router/rest",
    ],
)
async def test_a_pull_channel_to_a_forbidden_url_is_422_and_not_created(
    client: httpx.AsyncClient, url: str
) -> None:
    refused = await client.post("/channels", json=pull_channel_body("tmall", url))
    assert_problem(refused, 422, "pull.base_url")
    assert (await client.get("/channels/tmall")).status_code == 404
    assert (await client.get("/channels")).json() == []


async def test_patching_a_pull_url_to_a_forbidden_one_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    good = "https://gw.api.example.com/router/rest"
    created = await client.post("/channels", json=pull_channel_body("tmall", good))
    assert created.status_code == 201, created.text
    pull = created.json()["pull"] | {"base_url": "http://169.254.169.254/latest/meta-data"}
    assert_problem(await client.patch("/channels/tmall", json={"pull": pull}), 422, "pull.base_url")
    assert (await client.get("/channels/tmall")).json()["pull"]["base_url"] == good
    # Another field of the same channel still changes.
    done = await client.patch("/channels/tmall", json={"rate_limit_per_min": 60})
    assert done.status_code == 200 and done.json()["pull"]["base_url"] == good


async def test_loopback_follows_the_configured_policy(gdb: MigratedDatabase) -> None:
    async def post(settings: GatewaySettings, name: str) -> httpx.Response:
        app = create_app(
            title=SERVICE,
            runtime=DatabaseOnlyRuntime(gdb, producer=SERVICE),  # type: ignore[arg-type]
            routers=[build_router(settings)],
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            body = pull_channel_body(name, "http://localhost:8081/router/rest")
            return await http.post("/channels", json=body)

    assert (await post(GatewaySettings(), "dev")).status_code == 201
    strict = GatewaySettings(outbound_allowed_networks=[])
    assert_problem(await post(strict, "prod"), 422, "pull.base_url")
    https_only = GatewaySettings(outbound_allowed_schemes=["https"])
    assert_problem(await post(https_only, "prod"), 422, "pull.base_url")
    async with gdb.uow() as uow:
        names = [c.name for c in await GatewayRepository(uow.session).list_channels()]
    assert names == ["dev"]


# -- at pull time ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def marketplace() -> AsyncIterator[tuple[list[str], int]]:
    """A loopback marketplace answering empty pages; yields its request log and port."""
    requests: list[str] = []

    async def router(request: Request) -> JSONResponse:
        requests.append(str(request.url))
        return JSONResponse(
            {"trades_sold_increment_get_response": {"has_next": False, "trades": {"trade": []}}}
        )

    port = free_port()
    app = Starlette(routes=[Route("/router/rest", router)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield requests, port
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def store_pull_channel(gdb: MigratedDatabase, base_url: str) -> None:
    """A channel stored while the policy allowed its URL (e.g. before it was tightened)."""
    config = PullConfig(base_url=base_url, app_key="12345678", interval_s=0.05)  # type: ignore[arg-type]
    channel = Channel("taobao", "pull", SECRET, ChannelSettings(type="pull", pull=config))
    async with gdb.uow() as uow:
        await GatewayRepository(uow.session).add_channel(channel)
        await uow.commit()


def pull_runs(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "oms_gateway_pull_runs_total", {"channel": "taobao", "outcome": outcome}
    )
    return value or 0.0


async def test_a_pull_to_a_host_resolving_to_a_blocked_address_sends_nothing(
    gdb: MigratedDatabase, marketplace: tuple[list[str], int]
) -> None:
    requests, port = marketplace
    await store_pull_channel(gdb, f"http://localhost:{port}/router/rest")
    refused_before, ok_before = pull_runs("refused"), pull_runs("ok")

    strict = PullScheduler(gdb.uow, policy=STRICT)
    await strict.tick()
    await asyncio.sleep(0.06)  # the channel's interval
    await strict.tick()

    assert requests == []  # not one request reached the marketplace
    assert pull_runs("refused") == refused_before + 2
    async with gdb.uow() as uow:
        repo = GatewayRepository(uow.session)
        assert await repo.pull_cursor("taobao") is None
        [audit] = await repo.deliveries("taobao")  # audited once, not at every interval
    assert (audit["outcome"], audit["topic"]) == ("pull_refused", "pull")
    assert "forbidden address" in audit["detail"]

    # The same channel under the development policy does reach the (loopback) marketplace.
    await PullScheduler(gdb.uow).tick()
    assert len(requests) == 1
    assert pull_runs("ok") == ok_before + 1
