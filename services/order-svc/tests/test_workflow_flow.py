"""Workflow rules in the order flow and over HTTP, on a real PostgreSQL:
events are applied by the production consumers on a real broker, the API is called over ASGI,
what would be published is read from the outbox."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from oms_contracts import Event
from oms_contracts.events import (
    Address,
    CustomerIdentity,
    CustomerResolved,
    CustomerUpdated,
    OrderLine,
    OrderReceived,
    ReservedLine,
    StockReserved,
)
from oms_servicekit.testing import MigratedDatabase
from order_svc.adapters.credit_bureau import CreditDecision
from order_svc.credit import CreditConfig, apply_decision
from order_svc.domain.workflow import DEFAULT_RULES, RuleSetError
from order_svc.settings import OrderSettings
from order_svc.workflow import workflow_config

OPERATOR = {"X-Operator": "alice"}


async def apply(db: MigratedDatabase, event: Event) -> None:
    await db.deliver(event)


def received(unit_price: str = "9.90", qty: int = 1, user: str = "u-1") -> OrderReceived:
    return OrderReceived(
        order_id=uuid.uuid4(),
        channel="web",
        channel_order_id=f"W-{uuid.uuid4().hex[:8]}",
        customer=CustomerIdentity(platform_user_id=user, name="Li Lei"),
        lines=[OrderLine(line_no=1, sku="A", qty=qty, unit_price=Decimal(unit_price))],
        currency="CNY",
        paid=True,
        paid_at=datetime.now(UTC),
        shipping_address=Address(region="CN-SH", city="x"),
        received_at=datetime.now(UTC),
    )


async def place(db: MigratedDatabase, event: OrderReceived) -> str:
    await apply(db, event)
    return str(event.order_id)


async def reserve(db: MigratedDatabase, order_id: str, qty: int = 1) -> None:
    await apply(
        db,
        StockReserved(
            order_id=uuid.UUID(order_id),
            lines=[ReservedLine(line_no=1, sku="A", qty=qty, warehouse="WH-SH")],
            reserved_at=datetime.now(UTC),
        ),
    )


async def events_of(db: MigratedDatabase, key: str, event_type: str) -> list[dict[str, Any]]:
    return [
        row["envelope"].payload
        for row in await db.outbox_rows()
        if row["event_type"] == event_type and row["key"] == key
    ]


async def flag_customer(db: MigratedDatabase, user: str) -> None:
    """Customer-svc said this buyer is tagged ``flagged`` (profile, then identity)."""
    customer_id = uuid.uuid4()
    await apply(
        db,
        CustomerUpdated(
            customer_id=customer_id,
            changed_fields=["tags"],
            delivery_requirements=[],
            tags=["flagged"],
            updated_at=datetime.now(UTC),
        ),
    )
    earlier = received(user=user)
    await place(db, earlier)
    await apply(
        db,
        CustomerResolved(
            customer_id=customer_id,
            order_id=earlier.order_id,
            channel="web",
            platform_user_id=user,
            new_customer=True,
            resolved_at=datetime.now(UTC),
        ),
    )


async def order_view(api: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    r = await api.get(f"/orders/{order_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def review_exceptions(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await api.get("/exceptions", params={"cause": "manual_review"})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def assert_problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    if field is not None:
        assert body["field"] == field, body
    return body


# -- the flow -----------------------------------------------------------------------------


async def test_an_ordinary_order_is_reserved_confirmed_and_routed_by_rules(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    order_id = await place(db, received())
    assert len(await events_of(db, order_id, "OrderPaid")) == 1
    await reserve(db, order_id)
    order = await order_view(api, order_id)
    assert order["state"] == "routed"
    assert [(h["to_state"], h["actor"]) for h in order["history"]] == [
        ("received", "system"),
        ("paid", "system"),
        ("reserved", "rule:reserve_when_credit_ok"),
        ("confirmed", "rule:confirm_reserved"),
        ("routed", "rule:route_confirmed"),
    ]
    # No routing decision (no warehouses known): routed where inventory reserved.
    assert order["history"][-1]["reason"] == "routed: WH-SH"
    assert len(await events_of(db, order_id, "OrderConfirmed")) == 1
    [routed] = await events_of(db, order_id, "OrderRouted")
    assert [s["warehouse"] for s in routed["shipments"]] == ["WH-SH"]
    # One OrderStatusChanged per commit: reserved, confirmed and routed in one.
    changes = await events_of(db, order_id, "OrderStatusChanged")
    assert [[t["to_state"] for t in [*c["earlier"], c]] for c in changes] == [
        ["received", "paid"],
        ["reserved", "confirmed", "routed"],
    ]


async def test_an_order_over_the_amount_is_held_and_a_retry_lets_it_through(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    order_id = await place(db, received("6000.00", qty=2))
    order = await order_view(api, order_id)
    assert order["state"] == "exception"
    assert order["history"][-1]["actor"] == "rule:hold_amount"
    assert order["history"][-1]["reason"] == "manual_review (amount 12000.00 over 10000)"
    assert await events_of(db, order_id, "OrderPaid") == []  # no stock asked for
    [item] = await review_exceptions(api)
    assert (item["order_id"], item["detail"]) == (order_id, "amount 12000.00 over 10000")

    r = await api.post(
        f"/exceptions/{item['id']}/resolve", json={"action": "retry"}, headers=OPERATOR
    )
    assert r.status_code == 200, r.text
    assert r.json()["order_state"] == "paid"
    assert len(await events_of(db, order_id, "OrderPaid")) == 1  # not held again
    await reserve(db, order_id, qty=2)
    order = await order_view(api, order_id)
    assert order["state"] == "routed"
    assert ("paid", "alice") in [(h["to_state"], h["actor"]) for h in order["history"]]


async def test_release_of_a_review_hold_is_the_approval(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    order_id = await place(db, received("20000"))
    [item] = await review_exceptions(api)
    r = await api.post(
        f"/exceptions/{item['id']}/resolve", json={"action": "release"}, headers=OPERATOR
    )
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["order_state"]) == ("resolved", "paid")
    assert len(await events_of(db, order_id, "OrderPaid")) == 1


async def test_a_flagged_customer_is_held_and_each_hold_needs_its_own_approval(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    await flag_customer(db, "u-flag")
    order_id = await place(db, received("6000.00", qty=2, user="u-flag"))
    [first] = [i for i in await review_exceptions(api) if i["order_id"] == order_id]
    assert first["detail"] == "amount 12000.00 over 10000"

    r = await api.post(
        f"/exceptions/{first['id']}/resolve", json={"action": "retry"}, headers=OPERATOR
    )
    assert r.status_code == 200 and r.json()["order_state"] == "exception"  # held again
    order = await order_view(api, order_id)
    assert order["history"][-1]["actor"] == "rule:hold_flagged_customer"
    [second] = [i for i in await review_exceptions(api) if i["order_id"] == order_id]
    assert second["detail"] == "flagged customer"
    assert await events_of(db, order_id, "OrderPaid") == []

    r = await api.post(
        f"/exceptions/{second['id']}/resolve", json={"action": "retry"}, headers=OPERATOR
    )
    assert r.status_code == 200 and r.json()["order_state"] == "paid"
    assert len(await events_of(db, order_id, "OrderPaid")) == 1


async def test_after_an_approved_credit_check_the_hold_rules_apply(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    event = received("10000.01")
    await db.deliver(event, credit=CreditConfig(True, 30.0))
    async with db.uow() as uow:
        assert await apply_decision(
            uow, event.order_id, CreditDecision("approved"), expected=["pending"]
        )
        await uow.commit()
    order = await order_view(api, str(event.order_id))
    assert [h["to_state"] for h in order["history"]] == [
        "received",
        "paid",
        "credit_check",
        "paid",
        "exception",
    ]
    assert await events_of(db, str(event.order_id), "OrderPaid") == []


async def test_stored_rules_are_what_the_handlers_follow(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    rules = [
        {**r, "enabled": True} if r["name"] == "release_to_picking" else r for r in DEFAULT_RULES
    ]
    # A much lower limit, and automatic release to the warehouse.
    rules[0] = {**rules[0], "condition": "total > 50"}
    r = await api.put("/workflow/rules", json={"rules": rules}, headers=OPERATOR)
    assert r.status_code == 200, r.text

    held = await place(db, received("60"))
    assert (await order_view(api, held))["state"] == "exception"
    order_id = await place(db, received("40"))
    await reserve(db, order_id)
    order = await order_view(api, order_id)
    assert order["state"] == "picking"
    assert order["history"][-1]["actor"] == "rule:release_to_picking"


async def test_with_no_reserve_rule_a_paid_order_waits(
    db: MigratedDatabase, api: httpx.AsyncClient
) -> None:
    rules = [{**r, "enabled": r["name"] != "reserve_when_credit_ok"} for r in DEFAULT_RULES]
    r = await api.put("/workflow/rules", json={"rules": rules}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    order_id = await place(db, received())
    assert (await order_view(api, order_id))["state"] == "paid"
    assert await events_of(db, order_id, "OrderPaid") == []


# -- the API ------------------------------------------------------------------------------


async def test_the_defaults_are_served_until_rules_are_stored(api: httpx.AsyncClient) -> None:
    r = await api.get("/workflow/rules")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "default" and body["version"] is None
    assert [(x["name"], x["enabled"]) for x in body["rules"]] == [
        ("hold_amount", True),
        ("hold_flagged_customer", True),
        ("reserve_when_credit_ok", True),
        ("confirm_reserved", True),
        ("route_confirmed", True),
        ("release_to_picking", False),
    ]
    assert "customer_tags" in body["facts"]


async def test_put_stores_a_new_version_with_who_set_it(api: httpx.AsyncClient) -> None:
    versions = []
    for who in ("alice", "bob"):
        r = await api.put(
            "/workflow/rules", json={"rules": DEFAULT_RULES}, headers={"X-Operator": who}
        )
        assert r.status_code == 200, r.text
        assert r.json()["set_by"] == who
        versions.append(r.json()["version"])
    assert versions[1] > versions[0]
    body = (await api.get("/workflow/rules")).json()
    assert body["source"] == "stored"
    assert body["set_by"] == "bob" and body["set_at"] is not None
    assert body["version"] == versions[1]
    assert [x["name"] for x in body["rules"]] == [x["name"] for x in DEFAULT_RULES]


async def test_put_without_an_operator_is_refused(api: httpx.AsyncClient) -> None:
    r = await api.put("/workflow/rules", json={"rules": DEFAULT_RULES})
    assert_problem(r, 401)
    assert (await api.get("/workflow/rules")).json()["source"] == "default"


async def test_a_syntax_error_is_answered_with_the_rule_and_the_position(
    api: httpx.AsyncClient,
) -> None:
    rules = [*DEFAULT_RULES[:3], {**DEFAULT_RULES[3], "condition": "credit_ok and (total >"}]
    r = await api.put("/workflow/rules", json={"rules": rules}, headers=OPERATOR)
    body = assert_problem(r, 422, "rules.3.condition")
    assert body["index"] == 3 and body["position"] == len("credit_ok and (total >")
    assert "syntax error" in body["detail"]
    assert (await api.get("/workflow/rules")).json()["source"] == "default"  # nothing stored


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"condition": "colour == 'red'"}, "rules.2.condition"),
        ({"target": "shipped"}, "rules.2.target"),
        ({"state": "cancelled"}, "rules.2.state"),
        ({"name": "hold_amount"}, "rules.2.name"),
    ],
)
async def test_a_rule_that_cannot_work_is_refused(
    api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    rules = [*DEFAULT_RULES[:2], {**DEFAULT_RULES[2], **change}]
    r = await api.put("/workflow/rules", json={"rules": rules}, headers=OPERATOR)
    assert_problem(r, 422, field)


async def test_a_malformed_body_is_a_422(api: httpx.AsyncClient) -> None:
    r = await api.put(
        "/workflow/rules",
        json={"rules": [{**DEFAULT_RULES[0], "action": "explode"}]},
        headers=OPERATOR,
    )
    assert_problem(r, 422)


# -- WORKFLOW_RULES_PATH ------------------------------------------------------------------


def test_the_defaults_can_come_from_a_file_and_a_bad_file_stops_the_start(
    tmp_path: Path,
) -> None:
    good = tmp_path / "rules.json"
    rules = [
        {**r, "condition": "total > 500"} if r["name"] == "hold_amount" else r
        for r in DEFAULT_RULES
    ]
    good.write_text(json.dumps({"rules": rules}), encoding="utf-8")
    config = workflow_config(OrderSettings(workflow_rules_path=str(good), hold_amount_over=500))
    assert config.hold_amount_over == Decimal("500")
    assert config.default_rules[0].condition == "total > 500"

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{**DEFAULT_RULES[0], "condition": "total >"}]), encoding="utf-8")
    with pytest.raises(RuleSetError) as caught:
        workflow_config(OrderSettings(workflow_rules_path=str(bad)))
    assert (caught.value.index, caught.value.field) == (0, "condition")
