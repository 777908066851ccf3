"""Request bodies are capped before they are read: 413 problem+json, whether the body
announces its length or streams in chunks; exempt paths (streamed imports) are not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request

from oms_servicekit.body_limit import BodyLimitMiddleware
from oms_servicekit.problems import PROBLEM_JSON

LIMIT = 1000


def build_app(seen: list[int]) -> FastAPI:
    app = FastAPI()

    @app.post("/things")
    async def things(request: Request) -> dict[str, int]:
        size = len(await request.body())
        seen.append(size)
        return {"size": size}

    @app.post("/imports/big")
    async def big(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        seen.append(size)
        return {"size": size}

    app.add_middleware(BodyLimitMiddleware, max_bytes=LIMIT, exempt=("/imports/",))
    return app


async def chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


async def test_bodies_over_the_cap_are_413_and_never_reach_the_route() -> None:
    seen: list[int] = []
    transport = httpx.ASGITransport(app=build_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        ok = await client.post("/things", content=b"x" * LIMIT)
        assert ok.status_code == 200 and ok.json() == {"size": LIMIT}
        announced = await client.post("/things", content=b"x" * (LIMIT + 1))
        assert announced.status_code == 413
        assert announced.headers["content-type"] == PROBLEM_JSON
        assert announced.json()["status"] == 413
        streamed = await client.post("/things", content=chunks(5 * LIMIT))
        assert streamed.status_code == 413
        exempt = await client.post("/imports/big", content=chunks(5 * LIMIT))
        assert exempt.status_code == 200 and exempt.json() == {"size": 5 * LIMIT}
    assert seen == [LIMIT, 5 * LIMIT]
