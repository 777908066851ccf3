"""Channels as configuration and the platform webhooks, over HTTP on a real database.

Deliveries are signed exactly as the platforms sign them: base64 HMAC-SHA256 of the raw
body with the channel's secret.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from channel_gateway.domain.signature import platform_signature, sign
from oms_servicekit.testing import MigratedDatabase

SECRET = "shpss_0123456789abcdef"
SAMPLES = Path(__file__).parent / "fixtures"


def sample(name: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data | overrides


async def add_channel(client: httpx.AsyncClient, name: str, type_: str, **extra: Any) -> None:
    r = await client.post(
        "/channels", json={"name": name, "type": type_, "secret": SECRET, **extra}
    )
    assert r.status_code == 201, r.text


async def shopify(
    client: httpx.AsyncClient,
    channel: str,
    topic: str,
    body: dict[str, Any] | bytes,
    *,
    webhook_id: str | None = None,
    secret: str = SECRET,
    signature: str | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(
        f"/webhooks/shopify/{channel}",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": signature or platform_signature(secret, raw),
            "X-Shopify-Shop-Domain": "johns-apparel.myshopify.com",
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-API-Version": "2024-07",
        },
    )


async def woo(
    client: httpx.AsyncClient, channel: str, topic: str, body: dict[str, Any], delivery: str
) -> httpx.Response:
    raw = json.dumps(body).encode()
    return await client.post(
        f"/webhooks/woocommerce/{channel}",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Signature": platform_signature(SECRET, raw),
            "X-WC-Webhook-Delivery-ID": delivery,
            "X-WC-Webhook-Source": "https://example.com/",
        },
    )


async def events(db: MigratedDatabase) -> list[tuple[str, dict[str, Any]]]:
    return [(row["envelope"].event_type, row["envelope"].payload) for row in await db.outbox_rows()]


async def test_channels_are_configuration_and_the_secret_is_never_returned(
    client: httpx.AsyncClient,
) -> None:
    legacy = await client.post(
        "/channels", json={"name": "web", "type": "generic", "secret": SECRET}
    )
    assert legacy.status_code == 201
    assert "secret" not in legacy.json() and legacy.json()["secret_set"] is True

    rules = [{"attribute": "shipping_method", "contains": "express", "priority": "urgent"}]
    r = await client.post(
        "/channels",
        json={
            "name": "shop",
            "type": "shopify",
            "secret": SECRET,
            "clock_skew_s": 120,
            "split_shipment": "forbid",
            "order_class_rules": rules,
            "rate_limit_per_min": 600,
        },
    )
    assert r.status_code == 201, r.text
    r = await client.patch("/channels/shop", json={"rate_limit_per_min": 60, "secret": "n" * 12})
    assert r.status_code == 200, r.text
    assert r.json()["rate_limit_per_min"] == 60 and r.json()["split_shipment"] == "forbid"
    assert (await client.patch("/channels/nope", json={})).status_code == 404
    assert (await client.patch("/channels/shop", json={"owner": "x"})).status_code == 422

    listed = (await client.get("/channels")).json()
    assert [c["name"] for c in listed] == ["shop", "web"]
    assert all("secret" not in c for c in listed)
    assert listed[0]["order_class_rules"] == rules

    r = await client.put("/channels/shop/sku-map", json={"mapping": {"IPOD2008PINK": "SKU-1"}})
    assert r.status_code == 200
    assert (await client.get("/channels/shop/sku-map")).json()["mapping"] == {
        "IPOD2008PINK": "SKU-1"
    }
    assert (
        await client.post("/channels", json={"name": "web", "secret": SECRET})
    ).status_code == 409


async def test_shopify_create_paid_cancelled_become_one_order_and_its_updates(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "shop", "shopify")
    await client.put(
        "/channels/shop/sku-map",
        json={"mapping": {"IPOD2008PINK": "SKU-PINK", "IPOD2008BLACK": "SKU-BLACK"}},
    )
    pending = sample("shopify_order.json", financial_status="pending")
    created = await shopify(client, "shop", "orders/create", pending)
    assert created.status_code == 200, created.text
    assert created.json()["status"] == "accepted"
    ref = created.json()["order_ref"]

    # What Shopify sends later: the same order, a newer updated_at, the new facts.
    paid_body = pending | {"financial_status": "paid", "updated_at": "2022-01-01T09:00:00-05:00"}
    paid = await shopify(client, "shop", "orders/paid", paid_body)
    assert paid.json() == {"status": "updated", "order_ref": ref}
    cancelled = paid_body | {
        "cancelled_at": "2022-01-01T10:00:00-05:00",
        "cancel_reason": "fraud",
        "updated_at": "2022-01-01T10:00:00-05:00",
    }
    r = await shopify(client, "shop", "orders/cancelled", cancelled)
    assert r.json() == {"status": "updated", "order_ref": ref}

    # The gateway reports channel facts only; order-svc decides (OrderPaid, OrderCancelled).
    published = await events(gdb)
    assert [t for t, _ in published] == [
        "OrderReceived",
        "ChannelOrderUpdated",
        "ChannelOrderUpdated",
    ]
    received, paid_fact, cancel_fact = (p for _, p in published)
    assert received["order_id"] == ref and received["paid"] is False
    assert received["channel_updated_at"] == "2022-01-01T00:00:00Z"
    assert [ln["sku"] for ln in received["lines"]] == ["SKU-PINK", "SKU-BLACK"]
    assert received["lines"][0]["unit_price"] == "199.00" and received["currency"] == "USD"
    assert received["notes"] == "Please ring the bell twice"
    assert received["delivery_requirements"] == ["signature"]
    assert paid_fact["order_id"] == ref and paid_fact["changes"] == ["paid"]
    assert paid_fact["paid"] is True and paid_fact["cancelled"] is False
    assert paid_fact["channel_updated_at"] == "2022-01-01T14:00:00Z"
    assert [ln["qty"] for ln in paid_fact["lines"]] == [1, 1]
    assert cancel_fact["changes"] == ["cancelled"] and cancel_fact["cancelled"] is True
    assert cancel_fact["paid"] is True and cancel_fact["cancel_reason"] == "fraud"

    # older versions (Shopify retries a failed delivery with its original body) change nothing
    again = await shopify(client, "shop", "orders/paid", paid_body)
    assert again.json()["status"] == "duplicate"
    late = await shopify(client, "shop", "orders/updated", pending)
    assert late.json() == {"status": "duplicate", "order_ref": ref}
    assert len(await events(gdb)) == 3
    audit = (await client.get("/channels/shop/deliveries")).json()
    assert [a["outcome"] for a in audit[:2]] == ["stale", "stale"]


async def test_shopify_facts_come_from_the_signed_body_never_from_the_topic_header(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    """X-Shopify-Topic is not signed: `orders/paid` on an unpaid body pays nothing, and
    `orders/cancelled` on a body without cancelled_at cancels nothing."""
    await add_channel(client, "shop", "shopify")
    pending = sample("shopify_order.json", financial_status="pending")
    created = await shopify(client, "shop", "orders/paid", pending)
    assert created.json()["status"] == "accepted"
    r = await shopify(client, "shop", "orders/cancelled", pending)
    assert r.json()["status"] == "duplicate"
    published = await events(gdb)
    assert [t for t, _ in published] == ["OrderReceived"]
    assert published[0][1]["paid"] is False


async def test_changed_lines_or_address_of_a_known_order_become_one_channel_fact(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "shop", "shopify")
    body = sample("shopify_order.json", financial_status="paid")
    created = await shopify(client, "shop", "orders/create", body)
    ref = created.json()["order_ref"]
    changed = body | {
        "updated_at": "2022-01-02T09:00:00-05:00",
        "line_items": [body["line_items"][0] | {"quantity": 3}],
        "shipping_address": body["shipping_address"] | {"city": "Lexington"},
    }
    r = await shopify(client, "shop", "orders/updated", changed)
    assert r.json() == {"status": "updated", "order_ref": ref}
    published = await events(gdb)
    assert [t for t, _ in published] == ["OrderReceived", "ChannelOrderUpdated"]
    fact = published[1][1]
    assert fact["changes"] == ["lines", "address"]
    assert [(ln["line_no"], ln["qty"]) for ln in fact["lines"]] == [(1, 3)]
    assert fact["shipping_address"]["city"] == "Lexington"


async def test_tampered_unsigned_or_replayed_shopify_deliveries(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "shop", "shopify")
    raw = json.dumps(sample("shopify_order.json")).encode()
    good = platform_signature(SECRET, raw)
    tampered = raw.replace(b'"199.00"', b'"109.00"', 1)
    r = await shopify(client, "shop", "orders/create", tampered, signature=good)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem")
    r = await shopify(client, "shop", "orders/create", raw, secret="another-secret-1")
    assert r.status_code == 401
    assert await events(gdb) == []

    first = await shopify(client, "shop", "orders/create", raw, webhook_id="wh-1")
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    replay = await shopify(client, "shop", "orders/create", raw, webhook_id="wh-1")
    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate", "order_ref": first.json()["order_ref"]}
    assert len(await events(gdb)) == 1

    stale = await client.post(
        "/webhooks/shopify/shop",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": good,
            "X-Shopify-Webhook-Id": "wh-2",
            "X-Shopify-Triggered-At": "2020-01-01T00:00:00Z",
        },
    )
    assert stale.status_code == 401

    audit = (await client.get("/channels/shop/deliveries")).json()
    outcomes = [a["outcome"] for a in reversed(audit)]
    assert outcomes == [
        "signature_rejected",
        "signature_rejected",
        "accepted",
        "replay",
        "signature_rejected",
    ]
    assert audit[1]["delivery_id"] == "wh-1" and audit[1]["topic"] == "orders/create"


async def test_woocommerce_created_then_cancelled(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    rules = [{"attribute": "shipping_method", "contains": "express", "priority": "urgent"}]
    await add_channel(client, "woo", "woocommerce", order_class_rules=rules)
    order = sample("woocommerce_order.json")
    created = await woo(client, "woo", "order.created", order, "101")
    assert created.status_code == 200 and created.json()["status"] == "accepted", created.text
    replay = await woo(client, "woo", "order.created", order, "101")
    assert replay.json()["status"] == "duplicate"
    updated = await woo(client, "woo", "order.updated", order | {"status": "cancelled"}, "102")
    assert updated.json() == {"status": "updated", "order_ref": created.json()["order_ref"]}

    published = await events(gdb)
    assert [t for t, _ in published] == ["OrderReceived", "ChannelOrderUpdated"]
    assert published[1][1]["changes"] == ["cancelled"] and published[1][1]["cancelled"]
    received = published[0][1]
    assert received["paid"] is True and received["priority"] == "urgent"
    assert [ln["unit_price"] for ln in received["lines"]] == ["3.00", "12.10"]
    assert received["notes"] == "Leave with the neighbour if out"


async def test_an_unknown_sku_mapping_is_published_flagged_and_audited(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "woo", "woocommerce")
    await client.put("/channels/woo/sku-map", json={"mapping": {"WOO-SINGLE-1": "SKU-1"}})
    r = await woo(client, "woo", "order.created", sample("woocommerce_order.json"), "7")
    assert r.json()["status"] == "accepted"
    [(kind, received)] = await events(gdb)
    assert kind == "OrderReceived"
    assert [ln["sku"] for ln in received["lines"]] == ["SKU-1", "SHIP-IDEA-BLACK-M"]
    assert received["notes"].startswith("[unknown_sku_mapping: SHIP-IDEA-BLACK-M]")
    [audit] = (await client.get("/channels/woo/deliveries")).json()
    assert audit["outcome"] == "accepted_unknown_sku"
    assert audit["detail"] == "unknown_sku_mapping: SHIP-IDEA-BLACK-M"


async def test_rate_limit_size_and_content_type_apply_to_every_channel(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "shop", "shopify", rate_limit_per_min=2)
    body = sample("shopify_order.json")
    codes = [
        (await shopify(client, "shop", "orders/create", body | {"id": i})).status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 429]
    limited = await shopify(client, "shop", "orders/create", body | {"id": 9})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1

    await add_channel(client, "woo", "woocommerce")
    wrong_type = await client.post(
        "/webhooks/woocommerce/woo",
        content=b"webhook_id=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert wrong_type.status_code == 415
    big = b'{"x": "' + b"a" * (300 * 1024) + b'"}'
    too_big = await client.post(
        "/webhooks/woocommerce/woo", content=big, headers={"Content-Type": "application/json"}
    )
    assert too_big.status_code == 413
    outcomes = [a["outcome"] for a in (await client.get("/channels/woo/deliveries")).json()]
    assert outcomes == ["refused_413", "refused_415"]
    unknown = await client.post(
        "/webhooks/shopify/woo", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert unknown.status_code == 404


async def test_the_generic_webhook_still_takes_canonical_orders(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await add_channel(client, "web", "generic")
    body = {
        "channel_order_id": "G-1",
        "customer": {"platform_user_id": "u1"},
        "lines": [{"sku": "SKU-1", "qty": 1, "unit_price": "5.00"}],
        "currency": "CNY",
        "shipping_address": {"region": "CN-SH"},
    }
    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-OMS-Signature": sign(SECRET, int(time.time()), raw),
    }
    first = await client.post("/webhooks/web", content=raw, headers=headers)
    assert first.status_code == 202
    again = await client.post("/webhooks/web", content=raw, headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
