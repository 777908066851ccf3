"""A buyer over a SKU's cap per customer: OrderPaid names the buyer (opaquely), and a
``customer_limit`` refusal parks the order in the exception queue with a clear reason,
never re-routed. On a real PostgreSQL; no broker (events are read from the outbox)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from oms_contracts.events import RejectedLine, StockRejected
from oms_servicekit.testing import MigratedDatabase
from order_svc.domain.buyer import buyer_key
from order_svc.domain.exceptions import classify
from order_svc.domain.stock_refusal import refusal_reason

OPERATOR = {"X-Operator": "alice"}
CONSUMER = "order-svc"


def limit(sku: str = "SKU-1", qty: int = 2, available: int | None = 0) -> RejectedLine:
    return RejectedLine(line_no=1, sku=sku, qty=qty, reason="customer_limit", available=available)


# -- pure rules ---------------------------------------------------------------------------


def test_the_buyer_key_is_a_stable_opaque_hash_of_the_channel_account() -> None:
    key = buyer_key("web", "u-1")
    assert key == hashlib.sha256(b"web:u-1").hexdigest()[:32]
    assert key == buyer_key("web", "u-1")
    assert len(key) == 32 and int(key, 16) >= 0
    assert "u-1" not in key
    assert buyer_key("app", "u-1") != key  # a user id is only unique on its channel
    assert buyer_key("web", "u-2") != key


def test_a_customer_limit_refusal_is_its_own_cause_with_what_is_left() -> None:
    reason = refusal_reason([limit(available=1)])
    assert reason == "customer_limit (SKU-1: 2 asked, this customer may take 1 more)"
    assert classify(reason) == ("customer_limit", "SKU-1: 2 asked, this customer may take 1 more")

    mixed = [
        RejectedLine(line_no=1, sku="A", qty=1, reason="insufficient", available=0),
        limit("B", 3, 0),
    ]
    assert classify(refusal_reason(mixed))[0] == "customer_limit"
    plain = [RejectedLine(line_no=1, sku="A", qty=1, reason="insufficient", available=0)]
    assert refusal_reason(plain) == "stock_rejected (A: insufficient)"


# -- through the handlers and the API -----------------------------------------------------


async def place(api: httpx.AsyncClient, channel: str = "web", user: str = "u-1") -> str:
    body: dict[str, Any] = {
        "channel": channel,
        "channel_order_id": f"FS-{uuid.uuid4().hex[:8]}",
        "customer": {"platform_user_id": user, "name": "Li Lei"},
        "lines": [{"line_no": 1, "sku": "SKU-1", "qty": 2, "unit_price": "19.90"}],
        "currency": "CNY",
        "paid": True,
        "shipping_address": {"region": "CN-SH", "city": "Shanghai"},
    }
    r = await api.post("/orders", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def payloads(db: MigratedDatabase, event_type: str, order_id: str) -> list[dict[str, Any]]:
    return [
        row["envelope"].payload
        for row in await db.outbox_rows()
        if row["event_type"] == event_type and row["key"] == order_id
    ]


async def reject(db: MigratedDatabase, order_id: str, *lines: RejectedLine) -> None:
    event = StockRejected(order_id=uuid.UUID(order_id), lines=list(lines), rejected_at=_now())
    await db.deliver(event)


def _now() -> datetime:
    return datetime.now(UTC)


async def test_order_paid_names_the_buyer_by_its_key_and_no_personal_data(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id = await place(api, channel="web", user="u-42")

    [paid] = await payloads(db, "OrderPaid", order_id)

    assert paid["buyer"] == buyer_key("web", "u-42")
    assert "u-42" not in str(paid) and "Li Lei" not in str(paid)


async def test_a_customer_limit_parks_the_order_visibly_and_a_retry_names_the_buyer_again(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id = await place(api)

    await reject(db, order_id, limit(available=0))

    order = (await api.get(f"/orders/{order_id}")).json()
    assert order["state"] == "exception"
    assert order["exception_reason"] == (
        "customer_limit (SKU-1: 2 asked, this customer may take 0 more)"
    )
    r = await api.get("/exceptions", params={"cause": "customer_limit"})
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert (item["order_id"], item["detail"]) == (
        order_id,
        "SKU-1: 2 asked, this customer may take 0 more",
    )
    [raised] = await payloads(db, "OrderExceptionRaised", order_id)
    assert raised["cause"] == "customer_limit"
    assert len(await payloads(db, "OrderPaid", order_id)) == 1  # not re-routed

    # Retried (say the buyer's other order was cancelled): the order, loaded back from
    # the database, asks for its stock again under the same buyer.
    r = await api.post(
        f"/exceptions/{item['id']}/resolve", json={"action": "retry"}, headers=OPERATOR
    )
    assert r.status_code == 200, r.text
    first, again = await payloads(db, "OrderPaid", order_id)
    assert again["buyer"] == first["buyer"] == buyer_key("web", "u-1")
