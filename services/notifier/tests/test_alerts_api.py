"""``/subscriptions`` and ``/alerts`` over HTTP on a real database (no broker)."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from notifier.alerting import AlertingConfig
from notifier.api.routes import router
from notifier.bootstrap import build_app
from notifier.domain.subscriptions import TargetPolicy
from notifier.handlers import SERVICE
from notifier.settings import NotifierSettings
from oms_contracts.events import (
    OrderExceptionRaised,
    OrderExceptionResolved,
    SlaAtRisk,
    StockLow,
)
from oms_servicekit.audit import audit_trail
from oms_servicekit.http import create_app
from oms_servicekit.outbound import parse_networks
from oms_servicekit.problems import PROBLEM_JSON
from oms_servicekit.testing import DatabaseOnlyRuntime

OPERATOR = {"X-Operator": "ops-anna"}
T0 = datetime(2026, 11, 11, 10, 0, 5, tzinfo=UTC)


@pytest.fixture
async def client(db) -> AsyncIterator[httpx.AsyncClient]:
    runtime = DatabaseOnlyRuntime(db, producer=SERVICE)
    app = create_app(title=SERVICE, runtime=runtime, routers=[router])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def webhook(url: str = "http://127.0.0.1:9000/hook", **extra: Any) -> dict[str, Any]:
    return {"event_types": ["SlaAtRisk"], "target": {"type": "webhook", "url": url}, **extra}


def assert_problem(response: httpx.Response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"] == field


# -- subscriptions --------------------------------------------------------------------


async def test_create_list_and_delete_a_webhook_subscription(client, db) -> None:
    created = await client.post(
        "/subscriptions",
        json=webhook(name="ops hook", filter={"channel": "web"}),
        headers=OPERATOR,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert len(body["secret"]) >= 32  # shown once ...
    assert body["target"] == {"type": "webhook", "url": "http://127.0.0.1:9000/hook"}
    assert body["filter"] == {"channel": "web", "warehouse": None}
    assert body["created_by"] == "ops-anna"

    listed = (await client.get("/subscriptions")).json()
    assert [s["id"] for s in listed] == [body["id"]]
    assert "secret" not in listed[0]  # ... and never again
    one = (await client.get(f"/subscriptions/{body['id']}")).json()
    assert "secret" not in one and one["name"] == "ops hook"

    assert (
        await client.delete(f"/subscriptions/{body['id']}", headers=OPERATOR)
    ).status_code == 204
    assert (await client.get("/subscriptions")).json() == []
    gone = await client.delete(f"/subscriptions/{body['id']}", headers=OPERATOR)
    assert_problem(gone, 404, "subscription_id")
    assert_problem(await client.get(f"/subscriptions/{body['id']}"), 404, "subscription_id")

    async with db() as session:
        actions = [
            (r.entity, r.action, r.actor) for r in await session.execute(select(audit_trail))
        ]
    assert sorted(actions) == [
        ("subscription", "create", "ops-anna"),
        ("subscription", "delete", "ops-anna"),
    ]


async def test_email_and_board_subscriptions_have_no_secret(client) -> None:
    mail = await client.post(
        "/subscriptions",
        json={
            "event_types": ["CustomerUpdated", "StockLow"],
            "filter": {"warehouse": "WH-1"},
            "target": {"type": "email", "address": "warehouse@example.com"},
        },
        headers=OPERATOR,
    )
    assert mail.status_code == 201 and mail.json()["secret"] is None
    assert mail.json()["event_types"] == ["CustomerUpdated", "StockLow"]
    board = await client.post(
        "/subscriptions",
        json={"event_types": ["SlaBreached"], "target": {"type": "board"}},
        headers=OPERATOR,
    )
    assert board.status_code == 201 and board.json()["target"] == {"type": "board"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (webhook("http://169.254.169.254/latest/meta-data"), "target.url"),
        (webhook("http://metadata.google.internal/"), "target.url"),
        (webhook("gopher://example.com/"), "target.url"),
        (
            {"event_types": ["SlaAtRisk"], "target": {"type": "email", "address": "not-mail"}},
            "target.address",
        ),
        ({"event_types": ["Nope"], "target": {"type": "board"}}, "event_types"),
        ({"event_types": [], "target": {"type": "board"}}, "event_types"),
        ({"event_types": ["SlaAtRisk"]}, "target"),
        ({"event_types": ["SlaAtRisk"], "target": {"type": "pager"}}, "target"),
        (webhook(secret="mine"), "secret"),
        (webhook(filter={"sku": "S"}), "filter.sku"),
    ],
)
async def test_bad_subscriptions_are_422_naming_the_field(client, body, field) -> None:
    response = await client.post("/subscriptions", json=body, headers=OPERATOR)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"].startswith(field)


async def test_loopback_webhooks_follow_the_configured_policy(client) -> None:
    client.app.state.target_policy = TargetPolicy(allowed=parse_networks([]))
    refused = await client.post("/subscriptions", json=webhook(), headers=OPERATOR)
    assert_problem(refused, 422, "target.url")
    ok = await client.post(
        "/subscriptions", json=webhook("https://hooks.example.com/x"), headers=OPERATOR
    )
    assert ok.status_code == 201


async def test_subscription_changes_need_an_operator(client) -> None:
    assert_problem(await client.post("/subscriptions", json=webhook()), 401, "X-Operator")
    assert_problem(await client.delete(f"/subscriptions/{uuid.uuid4()}"), 401, "X-Operator")


# -- alerts ---------------------------------------------------------------------------


async def raise_alerts(deliver, client) -> None:
    """Two SLA risks (one subscribed by webhook and board) and one low stock, a day apart."""
    await client.post("/subscriptions", json=webhook(), headers=OPERATOR)
    await client.post(
        "/subscriptions",
        json={"event_types": ["SlaAtRisk"], "target": {"type": "board"}},
        headers=OPERATOR,
    )
    for day, event in enumerate(
        [
            SlaAtRisk(
                order_id=uuid.uuid4(),
                channel="web",
                order_class="standard",
                stage="pick",
                deadline=T0,
                raised_at=T0,
            ),
            StockLow(sku="SKU-9", available=1, safety_stock=4, warehouse="WH-1", raised_at=T0),
        ]
    ):
        at = T0 + timedelta(days=day)
        await deliver(event, at=at, alerting=AlertingConfig())


async def test_alerts_carry_their_delivery_state_and_filter_by_type_and_since(
    client, deliver
) -> None:
    await raise_alerts(deliver, client)

    everything = (await client.get("/alerts")).json()
    assert [a["alert_type"] for a in everything] == ["stock_low", "sla_at_risk"]
    low, risk = everything
    assert (low["delivery_state"], low["deliveries"]) == ("none", [])
    assert risk["delivery_state"] == "pending"  # the webhook is not sent yet
    assert sorted((d["target_type"], d["state"]) for d in risk["deliveries"]) == [
        ("board", "delivered"),
        ("webhook", "pending"),
    ]
    assert risk["event_type"] == "SlaAtRisk" and risk["channel"] == "web"

    by_cause = (await client.get("/alerts", params={"type": "stock_low"})).json()
    by_event = (await client.get("/alerts", params={"type": "StockLow"})).json()
    assert [a["id"] for a in by_cause] == [a["id"] for a in by_event] == [low["id"]]
    since = (T0 + timedelta(hours=1)).isoformat()
    assert [a["id"] for a in (await client.get("/alerts", params={"since": since})).json()] == [
        low["id"]
    ]
    # Older clients' parameters still work.
    assert len((await client.get("/alerts", params={"state": "open", "limit": 1})).json()) == 1


async def test_since_must_be_a_time_with_a_zone(client) -> None:
    assert_problem(await client.get("/alerts", params={"since": "yesterday"}), 422, "since")
    assert_problem(
        await client.get("/alerts", params={"since": "2026-11-11T10:00:00"}), 422, "since"
    )


async def test_acknowledging_an_alert_records_the_operator(client, deliver, db) -> None:
    await raise_alerts(deliver, client)
    [low, _] = (await client.get("/alerts")).json()

    acked = await client.post(f"/alerts/{low['id']}/ack", headers=OPERATOR)
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "ops-anna"
    assert acked.json()["acknowledged_at"] is not None
    again = await client.post(f"/alerts/{low['id']}/ack", headers={"X-Operator": "ops-ben"})
    assert again.status_code == 200 and again.json()["acknowledged_by"] == "ops-anna"
    assert [
        a["id"] for a in (await client.get("/alerts", params={"state": "acknowledged"})).json()
    ] == [low["id"]]
    async with db() as session:
        audits = [
            (r.entity, r.entity_id, r.action, r.actor)
            for r in await session.execute(
                select(audit_trail).where(audit_trail.c.entity == "alert")
            )
        ]
    assert audits == [("alert", low["id"], "acknowledge", "ops-anna")]


async def test_acknowledging_needs_an_operator_and_a_known_alert(client, deliver) -> None:
    await raise_alerts(deliver, client)
    [low, _] = (await client.get("/alerts")).json()
    assert_problem(await client.post(f"/alerts/{low['id']}/ack"), 401, "X-Operator")
    assert_problem(
        await client.post(f"/alerts/{low['id']}/ack", headers={"X-Operator": "  "}),
        401,
        "X-Operator",
    )
    assert_problem(
        await client.post(f"/alerts/{low['id']}/ack", headers={"X-Operator": "x" * 200}),
        400,
        "X-Operator",
    )
    assert_problem(
        await client.post(f"/alerts/{uuid.uuid4()}/ack", headers=OPERATOR), 404, "alert_id"
    )
    assert_problem(await client.post("/alerts/not-a-uuid/ack", headers=OPERATOR), 422, "alert_id")
    assert (await client.get("/alerts", params={"state": "open"})).json()[0]["state"] == "open"


async def test_a_resolved_alert_cannot_be_acknowledged(client, deliver) -> None:
    order = uuid.uuid4()
    raised = OrderExceptionRaised(
        exception_id=uuid.uuid4(),
        order_id=order,
        channel="web",
        cause="manual_review",
        raised_at=T0,
    )
    await deliver(raised)
    resolved = OrderExceptionResolved(
        exception_id=raised.exception_id,
        order_id=order,
        channel="web",
        cause="manual_review",
        action="release",
        actor="ops-carl",
        resolved_at=T0,
    )
    await deliver(resolved)
    [alert] = (await client.get("/alerts")).json()
    assert (alert["state"], alert["resolved_by"]) == ("resolved", "ops-carl")
    assert_problem(
        await client.post(f"/alerts/{alert['id']}/ack", headers=OPERATOR), 409, "alert_id"
    )


def test_the_app_serves_the_alert_routes_with_the_configured_policy() -> None:
    app = build_app(NotifierSettings(webhook_allowed_networks=[]))
    paths = set(app.openapi()["paths"])
    assert {"/subscriptions", "/subscriptions/{subscription_id}", "/alerts/{alert_id}/ack"} <= paths
    policy = app.state.target_policy
    assert not policy.address_allowed(ipaddress.ip_address("127.0.0.1"))
    default = build_app().state.target_policy
    assert default.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert not default.address_allowed(ipaddress.ip_address("169.254.169.254"))
