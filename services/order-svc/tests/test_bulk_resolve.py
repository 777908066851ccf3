"""Resolving every open exception of one cause at once (after a credit bureau outage),
over HTTP on a real PostgreSQL; events are read from the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text

from oms_contracts.events import RejectedLine, StockRejected
from oms_servicekit.testing import MigratedDatabase
from order_svc.adapters.repository import OrderRepository
from order_svc.publishing import publish_transitions

OPERATOR = {"X-Operator": "alice"}
URL = "/exceptions/resolve"


#: A paid front-end order, less its channel and reference.
ORDER: dict[str, Any] = {
    "customer": {"platform_user_id": "u-1", "name": "Li Lei"},
    "lines": [{"line_no": 1, "sku": "SKU-1", "qty": 2, "unit_price": "19.90"}],
    "currency": "CNY",
    "paid": True,
    "shipping_address": {"region": "CN-SH", "city": "Shanghai"},
}


async def place(api: httpx.AsyncClient, channel: str) -> str:
    ref = {"channel": channel, "channel_order_id": f"FE-{uuid.uuid4().hex[:8]}"}
    r = await api.post("/orders", json={**ORDER, **ref})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def degraded(api: httpx.AsyncClient, db: MigratedDatabase, *channels: str) -> list[str]:
    """Orders whose credit checks degraded: they went on, each with an advisory exception."""
    order_ids = [await place(api, channel) for channel in channels]
    now = datetime.now(UTC)
    async with db.uow() as uow:
        repo = OrderRepository(uow.session)
        for order in [await repo.get_for_update(uuid.UUID(i)) for i in order_ids]:
            assert order is not None
            order.start_credit_check(now)
            order.credit_check_degraded("breaker_open", now)
            await publish_transitions(uow, order)
            await repo.save(order)
        await uow.commit()
    return order_ids


async def held(api: httpx.AsyncClient, db: MigratedDatabase) -> str:
    """An order held in ``exception`` by a stock rejection."""
    order_id = await place(api, "web")
    rejected = StockRejected(
        order_id=uuid.UUID(order_id),
        lines=[RejectedLine(line_no=1, sku="SKU-1", qty=2, reason="insufficient", available=0)],
        rejected_at=datetime.now(UTC),
    )
    await db.deliver(rejected)
    return order_id


async def open_causes(api: httpx.AsyncClient) -> list[tuple[str, str]]:
    r = await api.get("/exceptions", params={"limit": 500})
    return sorted((i["cause"], i["order_id"]) for i in r.json()["items"])


async def resolved_events(db: MigratedDatabase) -> list[dict[str, Any]]:
    rows = await db.outbox_rows()
    return [r["envelope"].payload for r in rows if r["event_type"] == "OrderExceptionResolved"]


async def audit_rows(db: MigratedDatabase) -> list[Any]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT actor, action, entity, after FROM audit_trail WHERE entity = 'exception'")
        )
        return list(rows)


async def test_all_degraded_orders_are_released_at_once_each_audited(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    *outage, other_channel = await degraded(api, db, *["distributor"] * 3, "b2b")
    stock = await held(api, db)

    body = {"cause": "credit_degraded", "action": "release", "channel": "distributor"}
    r = await api.post(URL, json={**body, "note": "bureau back", "limit": 2}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    first = r.json()
    assert (first["cause"], first["action"], len(first["resolved"])) == (
        "credit_degraded",
        "release",
        2,
    )
    assert (first["refused"], first["remaining"]) == ([], 1)  # call again for the rest
    r = await api.post(URL, json=body, headers=OPERATOR)
    assert (len(r.json()["resolved"]), r.json()["remaining"]) == (1, 0)

    # Only that cause of that channel: the other exceptions stay open.
    assert await open_causes(api) == sorted(
        [("credit_degraded", other_channel), ("stock_rejected", stock)]
    )
    events = await resolved_events(db)
    assert sorted(e["order_id"] for e in events) == sorted(outage)
    assert {(e["cause"], e["action"], e["actor"]) for e in events} == {
        ("credit_degraded", "release", "alice")
    }
    for order_id in outage:  # released: the orders go on where they are
        assert (await api.get(f"/orders/{order_id}")).json()["state"] == "paid"
    audit = await audit_rows(db)
    assert len(audit) == 3  # one row per exception resolved
    assert {(a.actor, a.action, a.after["batch"]) for a in audit} == {
        ("alice", "resolve", "credit_degraded")
    }


async def test_exceptions_the_action_does_not_fit_stay_open_and_are_listed(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    stock = await held(api, db)
    r = await api.post(URL, json={"cause": "stock_rejected", "action": "release"}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    [refusal] = r.json()["refused"]
    assert (refusal["order_id"], refusal["order_state"]) == (stock, "exception")
    assert "retry or cancel" in refusal["detail"]
    assert (r.json()["resolved"], r.json()["remaining"]) == ([], 1)
    assert await resolved_events(db) == []
    assert await audit_rows(db) == []


async def test_bulk_resolving_needs_an_operator_and_names_the_bad_field(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    await degraded(api, db, "distributor")
    ok: dict[str, Any] = {"cause": "credit_degraded", "action": "release"}

    def problem(r: httpx.Response, status: int, field: str) -> None:
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == field, r.json()

    problem(await api.post(URL, json=ok), 401, "X-Operator")
    for bad, field in [
        ({**ok, "cause": "bogus"}, "cause"),
        ({**ok, "action": "fix"}, "action"),
        ({**ok, "limit": 0}, "limit"),
        ({**ok, "limit": 1001}, "limit"),
        ({**ok, "channel": ""}, "channel"),
        ({**ok, "everything": True}, "everything"),
        ({"action": "release"}, "cause"),
    ]:
        problem(await api.post(URL, json=bad, headers=OPERATOR), 422, field)
    assert len(await open_causes(api)) == 1  # nothing was resolved
