"""The webhook's ack path does only what the acknowledgement needs.

A warm channel costs no statement (its configuration and SKU map are cached per
process); a new order is claimed and audited in one statement, then its event is written
to the outbox; a repeated order reads what was heard (locked) and writes its audit row.
Concurrent deliveries share one transaction (a group commit). Statements are counted
on the app's engine, as the database sees them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from channel_gateway.domain.signature import platform_signature, sign
from oms_servicekit.testing import MigratedDatabase, recorded_statements, refused_inserts

SECRET = "shpss_0123456789abcdef"
SHOPIFY_ORDER = Path(__file__).parent / "fixtures" / "shopify_order.json"


def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SHOPIFY_ORDER.read_text())
    return data


async def add_channel(client: httpx.AsyncClient, name: str, type_: str) -> None:
    r = await client.post("/channels", json={"name": name, "type": type_, "secret": SECRET})
    assert r.status_code == 201, r.text


async def shopify(
    client: httpx.AsyncClient,
    channel: str,
    body: dict[str, Any] | bytes,
    *,
    webhook_id: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(
        f"/webhooks/shopify/{channel}",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": signature or platform_signature(SECRET, raw),
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        },
    )


def canonical(order_id: str, sku: str = "SKU-1") -> bytes:
    return json.dumps(
        {
            "channel_order_id": order_id,
            "customer": {"platform_user_id": "u1"},
            "lines": [{"sku": sku, "qty": 1, "unit_price": "5.00"}],
            "currency": "CNY",
            "shipping_address": {"region": "CN-SH"},
        }
    ).encode()


async def generic(
    client: httpx.AsyncClient,
    channel: str,
    raw: bytes,
    secret: str = SECRET,
    correlation_id: str | None = None,
) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "X-OMS-Signature": sign(secret, int(time.time()), raw),
    }
    if correlation_id is not None:
        headers["X-Correlation-Id"] = correlation_id
    return await client.post(f"/webhooks/{channel}", content=raw, headers=headers)


def touches_channel_config(sql: str) -> bool:
    return " channels" in sql or "sku_map" in sql


async def outcomes(client: httpx.AsyncClient, channel: str) -> list[str]:
    rows = (await client.get(f"/channels/{channel}/deliveries")).json()
    return [row["outcome"] for row in reversed(rows)]


async def test_an_accepted_generic_webhook_takes_two_statements_on_a_warm_channel(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "web", "generic")

    with recorded_statements(gdb.engine) as cold:
        assert (await generic(client, "web", canonical("G-1"))).status_code == 202
    # The channel and its SKU map in one read, then the claim with its audit row, then
    # the outbox row.
    assert len(cold) == 3, cold
    assert touches_channel_config(cold[0])

    with recorded_statements(gdb.engine) as warm:
        accepted = await generic(client, "web", canonical("G-2"))
    assert accepted.status_code == 202
    assert len(warm) == 2, warm
    assert not any(touches_channel_config(sql) for sql in warm), warm
    assert "INSERT INTO channel_orders" in warm[0] and "INSERT INTO deliveries" in warm[0]
    assert "INSERT INTO outbox" in warm[1]

    with recorded_statements(gdb.engine) as repeated:
        again = await generic(client, "web", canonical("G-2"))
    assert again.status_code == 200
    assert again.json() == {"order_ref": accepted.json()["order_ref"], "status": "duplicate"}
    # The claim (nothing claimed: no audit row from it), what was heard (locked), the
    # audit row.
    assert len(repeated) == 3, repeated
    assert not any(touches_channel_config(sql) for sql in repeated), repeated
    assert not any("INSERT INTO outbox" in sql for sql in repeated)

    assert await outcomes(client, "web") == ["accepted", "accepted", "duplicate"]
    rows = (await client.get("/channels/web/deliveries")).json()
    assert rows[1]["order_id"] == accepted.json()["order_ref"]


async def test_a_shopify_delivery_links_its_id_in_the_statement_that_claims_the_order(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "shop", "shopify")
    body = sample()
    assert (await shopify(client, "shop", body)).status_code == 200

    with recorded_statements(gdb.engine) as warm:
        first = await shopify(client, "shop", body | {"id": 77}, webhook_id="w1")
    assert first.json()["status"] == "accepted"
    # The delivery id, the claim with its audit row and the delivery id's order, the outbox.
    assert len(warm) == 3, warm
    assert not any(touches_channel_config(sql) for sql in warm), warm

    replay = await shopify(client, "shop", body | {"id": 77}, webhook_id="w1")
    assert replay.json() == {"status": "duplicate", "order_ref": first.json()["order_ref"]}
    again = await shopify(client, "shop", body | {"id": 77}, webhook_id="w2")
    assert again.json()["status"] == "duplicate"
    replay = await shopify(client, "shop", body | {"id": 77}, webhook_id="w2")
    assert replay.json() == {"status": "duplicate", "order_ref": first.json()["order_ref"]}
    assert await outcomes(client, "shop") == [
        "accepted",
        "accepted",
        "replay",
        "duplicate",
        "replay",
    ]


async def test_a_secret_rotated_with_patch_applies_to_the_next_request(
    client: httpx.AsyncClient,
) -> None:
    await add_channel(client, "web", "generic")
    await add_channel(client, "shop", "shopify")
    assert (await generic(client, "web", canonical("R-1"))).status_code == 202
    body = sample()
    assert (await shopify(client, "shop", body)).status_code == 200

    rotated = "rotated-" + uuid.uuid4().hex
    for channel in ("web", "shop"):
        patched = await client.patch(f"/channels/{channel}", json={"secret": rotated})
        assert patched.status_code == 200, patched.text

    old = await generic(client, "web", canonical("R-2"))
    assert old.status_code == 401, old.text
    assert old.headers["content-type"].startswith("application/problem+json")
    assert (await generic(client, "web", canonical("R-2"), rotated)).status_code == 202

    raw = json.dumps(body | {"id": 78}).encode()
    old = await shopify(client, "shop", raw)
    assert old.status_code == 401
    signed = platform_signature(rotated, raw)
    new = await shopify(client, "shop", raw, signature=signed)
    assert new.status_code == 200 and new.json()["status"] == "accepted"
    assert (await outcomes(client, "web"))[-2:] == ["signature_rejected", "accepted"]


async def test_a_new_sku_map_applies_to_the_next_request(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "web", "generic")
    assert (await generic(client, "web", canonical("M-1", "CH-1"))).status_code == 202
    mapped = await client.put("/channels/web/sku-map", json={"mapping": {"CH-1": "SKU-9"}})
    assert mapped.status_code == 200
    assert (await generic(client, "web", canonical("M-2", "CH-1"))).status_code == 202
    skus = [
        [line["sku"] for line in row["envelope"].payload["lines"]]
        for row in await gdb.outbox_rows()
    ]
    assert skus == [["CH-1"], ["SKU-9"]]


async def test_concurrent_webhooks_commit_in_groups_and_repeats_stay_one_order(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "web", "generic")
    await add_channel(client, "app", "generic")
    bodies = [("web" if i % 2 else "app", canonical(f"C-{i}")) for i in range(24)]
    bodies += [("web", canonical("C-REPEATED"))] * 6

    with recorded_statements(gdb.engine) as seen:
        answers = await asyncio.gather(*(generic(client, ch, raw) for ch, raw in bodies))

    assert [a.status_code for a in answers[:24]] == [202] * 24, [a.text for a in answers]
    repeated = answers[24:]
    assert sorted(a.status_code for a in repeated) == [200] * 5 + [202]
    assert len({a.json()["order_ref"] for a in repeated}) == 1
    assert len({a.json()["order_ref"] for a in answers}) == 25
    claims = [sql for sql in seen if "INSERT INTO channel_orders" in sql]
    assert len(claims) < 12, f"{len(claims)} claim statements for 30 concurrent webhooks"
    # Every claimed order is audited as accepted (in the statement that claims it), each
    # repeat as what it was.
    web = await outcomes(client, "web")
    assert web.count("accepted") == 12 + 1 and len(web) == 12 + 6, web
    async with gdb.engine.connect() as conn:
        outbox = await conn.scalar(
            text("SELECT count(*) FROM outbox WHERE event_type = 'OrderReceived'")
        )
    assert outbox == 25


async def test_each_order_of_a_group_keeps_its_own_requests_correlation_id(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    """A group is committed by one writer task, for many requests: every order's event
    must still carry the correlation id of the request that brought it, or one order can
    no longer be followed across the services."""
    await add_channel(client, "web", "generic")
    answers = await asyncio.gather(
        *(
            generic(client, "web", canonical(f"K-{i}"), correlation_id=f"corr-{i}")
            for i in range(20)
        )
    )
    assert [a.status_code for a in answers] == [202] * 20
    async with gdb.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT payload FROM outbox WHERE event_type = 'OrderReceived'")
            )
        ).scalars()
        envelopes = [json.loads(row) for row in rows]
    seen = {e["payload"]["channel_order_id"]: e["correlation_id"] for e in envelopes}
    assert seen == {f"K-{i}": f"corr-{i}" for i in range(20)}


async def test_a_delivery_the_database_refuses_fails_alone_in_its_group(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "web", "generic")
    async with refused_inserts(gdb.engine, "channel_orders", "channel_order_id", "POISON"):
        ids = [f"P-{i}" for i in range(10)] + ["POISON"] + [f"Q-{i}" for i in range(10)]
        bodies = [canonical(order_id) for order_id in ids]
        answers = await asyncio.gather(
            *(generic(client, "web", raw) for raw in bodies), return_exceptions=True
        )

    poison = answers[10]
    assert isinstance(poison, Exception) or poison.status_code >= 500
    others = answers[:10] + answers[11:]
    assert all(isinstance(a, httpx.Response) and a.status_code == 202 for a in others), others
    async with gdb.engine.connect() as conn:
        claimed = await conn.scalars(text("SELECT channel_order_id FROM channel_orders"))
        outbox = await conn.scalar(text("SELECT count(*) FROM outbox"))
    assert sorted(claimed) == sorted(i for i in ids if i != "POISON")
    assert outbox == 20
