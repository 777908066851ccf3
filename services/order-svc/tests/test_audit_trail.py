"""The audit trail of order-svc on a real PostgreSQL, in AUTH_MODE=jwt.

Every operator action, applied, writes exactly one row (the token's subject, the action,
the entity, what changed) in its own transaction; refused for want of the role it is 403
and writes no row and changes nothing. ``GET /audit`` needs ``orders:read`` and pages
newest first. The service's own connection cannot rewrite or empty the trail, and can
purge only rows past the retention floor.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from oms_contracts.events import RejectedLine, ReservedLine, StockRejected, StockReserved
from oms_servicekit.testing import (
    MigratedDatabase,
    assert_audit_pages_newest_first,
    assert_audit_trail_append_only,
    audit_rows,
)

Mint = Callable[..., dict[str, str]]
CONSUMER = "order-svc"
ACTOR = "dave@example.com"
#: Sets the scene (its own rows are counted before the call under test).
SETUP_ROLES = ("orders:write", "orders:read")


def new_order() -> dict[str, Any]:
    return {
        "channel": "web",
        "channel_order_id": f"FE-{uuid.uuid4().hex[:8]}",
        "customer": {"platform_user_id": "u-1", "name": "Li Lei"},
        "lines": [{"line_no": 1, "sku": "SKU-1", "qty": 2, "unit_price": "19.90"}],
        "currency": "CNY",
        "paid": True,
        "shipping_address": {"region": "CN-SH", "city": "Shanghai"},
    }


@dataclass
class Scene:
    """What a case's preparation leaves: the call under test and how to see its effect."""

    method: str
    url: str
    body: dict[str, Any] | None
    #: The entity id the row must name (None: taken from the answer's ``id``).
    entity_id: str | None
    #: What a refused call must leave exactly as it was.
    snapshot: Callable[[], Awaitable[Any]]


class Stage:
    """Drives orders into the state a case needs, through the API and the handlers."""

    def __init__(self, api: httpx.AsyncClient, db: MigratedDatabase, mint: Mint) -> None:
        self.api, self.db = api, db
        self.setup = mint(*SETUP_ROLES, sub="setup-bot")

    async def place(self) -> str:
        r = await self.api.post("/orders", json=new_order(), headers=self.setup)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def reserved(self) -> str:
        order_id = await self.place()
        event = StockReserved(
            order_id=uuid.UUID(order_id),
            lines=[ReservedLine(line_no=1, sku="SKU-1", qty=2, warehouse="WH-SH")],
            reserved_at=datetime.now(UTC),
        )
        await self.db.deliver(event)
        return order_id

    async def act(self, order_id: str, action: str, body: dict[str, Any] | None = None) -> str:
        r = await self.api.post(f"/orders/{order_id}/{action}", json=body, headers=self.setup)
        assert r.status_code == 200, r.text
        return order_id

    async def picking(self) -> str:
        return await self.act(await self.reserved(), "pick")

    async def shipped(self) -> str:
        return await self.act(await self.picking(), "ship", SHIP)

    async def held_exception(self) -> str:
        order_id = await self.place()
        event = StockRejected(
            order_id=uuid.UUID(order_id),
            lines=[RejectedLine(line_no=1, sku="SKU-1", qty=2, reason="insufficient", available=0)],
            rejected_at=datetime.now(UTC),
        )
        await self.db.deliver(event)
        r = await self.api.get("/exceptions", headers=self.setup)
        [item] = r.json()["items"]
        return str(item["id"])

    async def read(self, url: str) -> Any:
        r = await self.api.get(url, headers=self.setup)
        assert r.status_code == 200, r.text
        return r.json()

    def order_scene(self, order_id: str, action: str, body: dict[str, Any] | None) -> Scene:
        async def snapshot() -> Any:
            order = await self.read(f"/orders/{order_id}")
            return order["state"], order["updated_at"], len(order["history"])

        return Scene("POST", f"/orders/{order_id}/{action}", body, order_id, snapshot)


SHIP = {"carrier": "SF", "tracking_number": "SF123"}


async def place_scene(stage: Stage) -> Scene:
    async def snapshot() -> Any:
        return (await stage.read("/orders"))["total"]

    return Scene("POST", "/orders", new_order(), None, snapshot)


async def cancel_scene(stage: Stage) -> Scene:
    return stage.order_scene(await stage.place(), "cancel", {"reason": "asked"})


async def pick_scene(stage: Stage) -> Scene:
    return stage.order_scene(await stage.reserved(), "pick", None)


async def ship_scene(stage: Stage) -> Scene:
    return stage.order_scene(await stage.picking(), "ship", SHIP)


async def deliver_scene(stage: Stage) -> Scene:
    return stage.order_scene(await stage.shipped(), "deliver", None)


async def refund_scene(stage: Stage) -> Scene:
    return stage.order_scene(await stage.place(), "refund", {"reason": "damaged"})


async def resolve_scene(stage: Stage) -> Scene:
    exception_id = await stage.held_exception()

    async def snapshot() -> Any:
        row = await stage.read(f"/exceptions/{exception_id}")
        return row["state"], row["order_state"], row["resolved_by"]

    url = f"/exceptions/{exception_id}/resolve"
    return Scene("POST", url, {"action": "retry", "note": "restocked"}, exception_id, snapshot)


async def rules_scene(stage: Stage) -> Scene:
    current = await stage.read("/workflow/rules")

    async def snapshot() -> Any:
        rules = await stage.read("/workflow/rules")
        return rules["version"], rules["rules"]

    rules = current["rules"]
    return Scene("PUT", "/workflow/rules", {"rules": rules}, "1", snapshot)


#: (the route's action, how to set the scene, entity, expected before, expected after)
CASES: list[tuple[str, Callable[[Stage], Awaitable[Scene]], str, Any, dict[str, Any]]] = [
    (
        "place",
        place_scene,
        "order",
        None,
        {"channel": "web", "state": "paid", "currency": "CNY", "total": "39.80", "lines": 1},
    ),
    ("cancel", cancel_scene, "order", {"state": "paid"}, {"state": "cancelled", "reason": "asked"}),
    ("pick", pick_scene, "order", {"state": "routed"}, {"state": "picking"}),
    ("ship", ship_scene, "order", {"state": "picking"}, {"state": "shipped", **SHIP}),
    ("deliver", deliver_scene, "order", {"state": "shipped"}, {"state": "delivered"}),
    (
        "refund",
        refund_scene,
        "order",
        {"state": "paid"},
        {"state": "refunded", "reason": "damaged"},
    ),
    (
        "resolve",
        resolve_scene,
        "exception",
        {"state": "open", "cause": "stock_rejected", "order_state": "exception"},
        {"state": "resolved", "action": "retry", "note": "restocked", "order_state": "paid"},
    ),
    (
        "replace",
        rules_scene,
        "workflow_rules",
        {"version": None},
        {"version": 1},
    ),
]


def call(api: httpx.AsyncClient, scene: Scene, headers: dict[str, str]) -> Awaitable[Any]:
    return api.request(scene.method, scene.url, json=scene.body, headers=headers)


@pytest.mark.parametrize(("action", "prepare", "entity", "before", "after"), CASES)
async def test_an_applied_action_writes_one_row_and_a_refused_one_none(
    jwt_api: httpx.AsyncClient,
    db: MigratedDatabase,
    mint: Mint,
    action: str,
    prepare: Callable[[Stage], Awaitable[Scene]],
    entity: str,
    before: Any,
    after: dict[str, Any],
) -> None:
    scene = await prepare(Stage(jwt_api, db, mint))
    rows_before, outbox_before = await audit_rows(db.engine), len(await db.outbox_rows())
    seen = await scene.snapshot()

    refused = await call(jwt_api, scene, mint("orders:read", sub=ACTOR))
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await audit_rows(db.engine) == rows_before
    assert len(await db.outbox_rows()) == outbox_before
    assert await scene.snapshot() == seen

    done = await call(jwt_api, scene, mint("orders:write", sub=ACTOR))
    assert done.status_code in (200, 201), done.text
    rows = await audit_rows(db.engine)
    assert rows[: len(rows_before)] == rows_before
    [row] = rows[len(rows_before) :]
    entity_id = scene.entity_id or done.json()["id"]
    assert (row["actor"], row["action"], row["entity"], row["entity_id"]) == (
        ACTOR,
        action,
        entity,
        entity_id,
    )
    if before is None:
        assert row["before"] is None
    else:
        assert before.items() <= row["before"].items(), row["before"]
    assert after.items() <= row["after"].items(), row["after"]
    assert await scene.snapshot() != seen


async def test_a_repeat_that_changes_nothing_writes_no_row(
    jwt_api: httpx.AsyncClient, db: MigratedDatabase, mint: Mint
) -> None:
    stage = Stage(jwt_api, db, mint)
    order_id = await stage.act(await stage.place(), "cancel", {"reason": "asked"})
    rows = await audit_rows(db.engine)
    again = await jwt_api.post(
        f"/orders/{order_id}/cancel", json={"reason": "again"}, headers=stage.setup
    )
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    illegal = await jwt_api.post(f"/orders/{order_id}/pick", headers=stage.setup)
    assert illegal.status_code == 409
    unknown = await jwt_api.post(f"/orders/{uuid.uuid4()}/pick", headers=stage.setup)
    assert unknown.status_code == 404
    assert await audit_rows(db.engine) == rows


async def test_placing_in_dev_mode_names_the_x_operator_or_anonymous(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    assert (await api.post("/orders", json=new_order())).status_code == 201
    named = await api.post("/orders", json=new_order(), headers={"X-Operator": "eve"})
    assert named.status_code == 201
    assert [r["actor"] for r in await audit_rows(db.engine)] == ["anonymous", "eve"]
    replay_key = {"Idempotency-Key": "k-1", "X-Operator": "eve"}
    body = new_order()
    assert (await api.post("/orders", json=body, headers=replay_key)).status_code == 201
    assert (await api.post("/orders", json=body, headers=replay_key)).status_code == 201
    assert len(await audit_rows(db.engine)) == 3  # the replay created nothing, so no row


async def test_reading_the_trail_needs_orders_read_and_pages_newest_first(
    jwt_api: httpx.AsyncClient, db: MigratedDatabase, mint: Mint
) -> None:
    stage = Stage(jwt_api, db, mint)
    placed = [await stage.place() for _ in range(3)]
    reader = mint("orders:read")
    await assert_audit_pages_newest_first(
        jwt_api, placed, reader=reader, refused=mint("orders:write")
    )
    partner = await jwt_api.get("/audit", headers=mint(channel="web"))
    assert partner.status_code == 403
    one = await jwt_api.get(
        "/audit", params={"entity": "order", "entity_id": placed[1]}, headers=reader
    )
    assert [(i["action"], i["actor"]) for i in one.json()["items"]] == [("place", "setup-bot")]


async def test_the_service_connection_cannot_rewrite_or_empty_the_trail(
    jwt_api: httpx.AsyncClient, db: MigratedDatabase, mint: Mint
) -> None:
    await Stage(jwt_api, db, mint).place()
    await assert_audit_trail_append_only(db.engine, entity="order")
