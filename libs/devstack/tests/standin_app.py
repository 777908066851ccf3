"""A stand-in for an OMS service, run by the launcher tests as ``python -m <module>``.

It does what the launcher relies on and nothing more: reads HOST/PORT, optionally creates its
database (like the real services do), answers ``/readyz``, echoes its environment, and keeps
the demo-seed endpoints in memory with 201/409 semantics. This file is copied into a temporary
directory by the tests; it is not imported by pytest itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import sys
import time
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI, Header, Request, Response

if os.environ.get("STANDIN_FAIL"):
    print("stand-in failing on purpose: boom", file=sys.stderr, flush=True)
    raise SystemExit(3)


async def ensure_database() -> None:
    name = os.environ["DB_NAME"]
    conn = await asyncpg.connect(os.environ["DATABASE_URL"] + "/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@asynccontextmanager
async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
    if os.environ.get("STANDIN_CREATE_DB"):
        await ensure_database()
    delay = float(os.environ.get("STANDIN_READY_DELAY", "0"))
    if delay:
        await asyncio.sleep(delay)
    yield


app = FastAPI(lifespan=lifespan)
store: dict[str, dict[str, Any]] = {"warehouses": {}, "skus": {}, "channels": {}}
receipts: list[dict[str, Any]] = []


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}


@app.get("/env")
async def env() -> dict[str, str]:
    return dict(os.environ)


def _create(kind: str, key: str, body: dict[str, Any], response: Response) -> dict[str, Any]:
    if key in store[kind]:
        response.status_code = 409
        return {"title": "already exists"}
    store[kind][key] = body
    response.status_code = 201
    return body


@app.post("/warehouses")
async def warehouses(body: dict[str, Any], response: Response) -> dict[str, Any]:
    return _create("warehouses", body["code"], body, response)


@app.post("/skus")
async def skus(body: dict[str, Any], response: Response) -> dict[str, Any]:
    return _create("skus", body["sku"], body, response)


@app.post("/channels")
async def channels(body: dict[str, Any], response: Response) -> dict[str, Any]:
    return _create("channels", body["name"], body, response)


@app.post("/stock/receipts", status_code=201)
async def stock_receipt(body: dict[str, Any], x_operator: str = Header(...)) -> dict[str, Any]:
    receipts.append({**body, "operator": x_operator})
    return body


@app.post("/webhooks/{channel}")
async def webhook(channel: str, request: Request, response: Response) -> dict[str, Any]:
    """Verify the signature the way the real gateway does (secret of a seeded channel)."""
    secret = store["channels"].get(channel, {}).get("secret", "")
    parts = dict(p.split("=", 1) for p in request.headers.get("x-oms-signature", "").split(","))
    raw = await request.body()
    expected = hmac.new(secret.encode(), f"{parts.get('t')}.".encode() + raw, hashlib.sha256)
    fresh = abs(time.time() - int(parts.get("t", "0"))) < 300
    if not (secret and fresh and hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))):
        response.status_code = 401
        return {"title": "bad signature"}
    response.status_code = 202
    return {"order_ref": "ORD-STANDIN-1"}


@app.get("/seeded")
async def seeded() -> dict[str, Any]:
    return {**{k: sorted(v) for k, v in store.items()}, "receipts": receipts}


if __name__ == "__main__":
    uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]), log_level="warning")
