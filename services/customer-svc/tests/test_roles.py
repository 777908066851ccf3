"""Roles in AUTH_MODE=jwt on customer-svc, on a real PostgreSQL: a merge without
``customers:pii`` is 403 and merges nothing, with it the merge happens and the token's
subject is audited; no token is 401; personal data is unmasked only for the role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from customer_svc.api.routes import router
from customer_svc.bootstrap import SERVICE
from oms_servicekit.audit import audit_trail
from oms_servicekit.http import create_app
from oms_servicekit.testing import DatabaseOnlyRuntime, TokenMint

MINT = TokenMint("dana@example.com")


@pytest.fixture
async def client(db: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(db, producer=SERVICE),  # type: ignore[arg-type]
        routers=[router],
        authenticator=MINT.authenticator(),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://customer-svc") as client:
        yield client


async def resolve(client: httpx.AsyncClient, user: str, phone: str) -> str:
    body = {"channel": "web", "platform_user_id": user, "phone": phone}
    r = await client.post("/customers/resolve", json=body, headers=MINT.bearer("customers:pii"))
    assert r.status_code in (200, 201), r.text
    return str(r.json()["customer_id"])


async def test_a_merge_without_the_role_is_403_and_merges_nothing(
    client: httpx.AsyncClient, db: Any, read_outbox: Any
) -> None:
    a = await resolve(client, "u1", "138 0000 0001")
    b = await resolve(client, "u2", "138 0000 0002")
    body = {"surviving_id": a, "merged_id": b}
    outbox_before = len(await read_outbox())

    assert (await client.post("/customers/merge", json=body)).status_code == 401
    refused = await client.post("/customers/merge", json=body, headers=MINT.bearer("orders:write"))
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert len(await read_outbox()) == outbox_before
    merges = select(audit_trail).where(audit_trail.c.action == "merge")
    async with db() as session:
        assert (await session.execute(merges)).all() == []

    done = await client.post("/customers/merge", json=body, headers=MINT.bearer("customers:pii"))
    assert done.status_code == 201, done.text
    async with db() as session:
        rows = (await session.execute(merges)).all()
    assert {r.entity_id for r in rows} == {a, b}
    assert {r.actor for r in rows} == {"dana@example.com"}


async def test_personal_data_follows_the_token_role(client: httpx.AsyncClient) -> None:
    a = await resolve(client, "u1", "138 0000 0001")
    assert (await client.get(f"/customers/{a}")).status_code == 401
    masked = await client.get(f"/customers/{a}", headers=MINT.bearer("orders:read"))
    full = await client.get(f"/customers/{a}", headers=MINT.bearer("customers:pii"))
    assert masked.status_code == full.status_code == 200
    assert full.json()["phone"] == "+8613800000001"
    assert masked.json()["phone"] != full.json()["phone"]


async def test_resolve_needs_the_role_in_jwt_mode(client: httpx.AsyncClient) -> None:
    body = {"channel": "web", "platform_user_id": "u9"}
    r = await client.post("/customers/resolve", json=body, headers=MINT.bearer("orders:read"))
    assert r.status_code == 403
