"""A stand-in for an OMS service, run by the launcher tests as ``python -m <module>``.

It does what the launcher relies on and nothing more: reads HOST/PORT, optionally creates its
database (like the real services do), answers ``/readyz``, echoes its environment, keeps the
demo-seed endpoints in memory with 201/409 semantics and verifies webhook signatures like the
gateway. Standard library only (plus asyncpg when asked to create its database) so that it
starts in milliseconds and keeps the launcher tests fast. The tests copy this file into a
temporary directory; pytest does not import it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

store: dict[str, dict[str, Any]] = {"warehouses": {}, "skus": {}, "channels": {}}
receipts: list[dict[str, Any]] = []
tag_rules: list[Any] = []
KEYS = {
    "/warehouses": ("warehouses", "code"),
    "/skus": ("skus", "sku"),
    "/channels": ("channels", "name"),
}


async def ensure_database() -> None:
    import asyncpg

    from oms_devstack.dburl import with_database

    name = os.environ["DB_NAME"]
    conn = await asyncpg.connect(with_database(os.environ["DATABASE_URL"], "postgres"))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def signature_ok(channel: str, header: str, raw: bytes) -> bool:
    secret = store["channels"].get(channel, {}).get("secret", "")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    ts = parts.get("t", "0")
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
    fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
    return bool(secret) and fresh and hmac.compare_digest(expected, parts.get("v1", ""))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/readyz":
            ready = not os.environ.get("STANDIN_NOT_READY")
            self.reply(200 if ready else 503, {"ready": ready})
        elif self.path == "/env":
            self.reply(200, dict(os.environ))
        elif self.path == "/tag-rules":
            self.reply(200, {"rules": tag_rules})
        elif self.path == "/seeded":
            self.reply(200, {**{k: sorted(v) for k, v in store.items()}, "receipts": receipts})
        else:
            self.reply(404, {"title": "not found"})

    def do_PUT(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/tag-rules":
            tag_rules[:] = json.loads(raw)["rules"]
            self.reply(200, {"rules": tag_rules})
        else:
            self.reply(404, {"title": "not found"})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.startswith("/webhooks/"):
            channel = self.path.removeprefix("/webhooks/")
            if signature_ok(channel, self.headers.get("X-OMS-Signature", ""), raw):
                self.reply(202, {"order_ref": "ORD-STANDIN-1"})
            else:
                self.reply(401, {"title": "bad signature"})
            return
        body = json.loads(raw)
        if self.path == "/stock/receipts":
            receipts.append({**body, "operator": self.headers.get("X-Operator")})
            self.reply(201, body)
        elif self.path in KEYS:
            kind, key = KEYS[self.path]
            if body[key] in store[kind]:
                self.reply(409, {"title": "already exists"})
            else:
                store[kind][body[key]] = body
                self.reply(201, body)
        else:
            self.reply(404, {"title": "not found"})


def main() -> None:
    if os.environ.get("STANDIN_FAIL"):
        print("stand-in failing on purpose: boom", file=sys.stderr, flush=True)
        raise SystemExit(3)
    if os.environ.get("STANDIN_CREATE_DB"):
        asyncio.run(ensure_database())
    server = ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler)
    print(f"stand-in {os.environ.get('DB_NAME')} listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
