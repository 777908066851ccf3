"""customer-svc's HTTP API on a real database (the runtime's Kafka side is not started)."""

from __future__ import annotations

import uuid

import pytest

from customer_svc.bootstrap import build_app
from oms_servicekit.problems import PROBLEM_JSON

PII = {"X-Roles": "customers:pii"}

BODY = {
    "channel": "shopee",
    "platform_user_id": "buyer-1",
    "name": "Ann",
    "phone": "+66 81 234 5678",
    "email": "Ann@Example.com",
}


def test_build_app_connects_nothing() -> None:
    app = build_app()
    assert set(app.openapi()["paths"]) >= {
        "/customers/resolve",
        "/customers/{customer_id}",
        "/healthz",
        "/readyz",
    }


async def test_resolve_new_then_existing(client, read_outbox) -> None:
    created = await client.post("/customers/resolve", json=BODY)
    assert created.status_code == 201
    customer_id = created.json()["customer_id"]
    assert created.json()["matched_by"] == "new"

    again = await client.post("/customers/resolve", json=BODY)
    assert again.status_code == 200
    assert again.json() == {
        "customer_id": customer_id,
        "matched_by": "platform_id",
        "merge_proposal": None,
    }

    by_phone = await client.post(
        "/customers/resolve",
        json={"channel": "lazada", "platform_user_id": "x", "phone": "+66 (81) 234-5678"},
    )
    assert by_phone.status_code == 200
    assert by_phone.json()["customer_id"] == customer_id
    assert by_phone.json()["matched_by"] == "phone"

    by_email = await client.post(
        "/customers/resolve",
        json={"channel": "line", "platform_user_id": "U1", "email": " ANN@example.com"},
    )
    assert by_email.json()["customer_id"] == customer_id
    assert by_email.json()["matched_by"] == "email"

    # Only the creation is announced; resolving through the API names no order.
    assert [r["event_type"] for r in await read_outbox()] == ["CustomerUpdated"]


async def test_get_customer_with_identities(client) -> None:
    customer_id = (await client.post("/customers/resolve", json=BODY)).json()["customer_id"]
    await client.post(
        "/customers/resolve",
        json={"channel": "line", "platform_user_id": "U1", "email": "ann@example.com"},
    )

    response = await client.get(f"/customers/{customer_id}", headers=PII)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == customer_id
    assert (body["display_name"], body["phone"], body["email"]) == (
        "Ann",
        "+66812345678",
        "ann@example.com",
    )
    assert [(i["channel"], i["platform_user_id"]) for i in body["identities"]] == [
        ("shopee", "buyer-1"),
        ("line", "U1"),
    ]


async def test_unknown_customer_is_a_404_problem(client) -> None:
    response = await client.get(f"/customers/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["status"] == 404


async def test_malformed_customer_id_is_a_422_problem(client) -> None:
    response = await client.get("/customers/not-a-uuid")
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "extra": 1}, "extra"),
        ({k: v for k, v in BODY.items() if k != "channel"}, "channel"),
        ({**BODY, "platform_user_id": ""}, "platform_user_id"),
        ({**BODY, "channel": "bad channel"}, "channel"),
        ({**BODY, "phone": "call me"}, "phone"),
        ({**BODY, "email": "nobody"}, "email"),
    ],
)
async def test_invalid_resolve_request_is_a_422_problem(client, read_outbox, body, field) -> None:
    response = await client.post("/customers/resolve", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"] == field
    assert await read_outbox() == []


async def test_blank_contact_data_counts_as_absent(client) -> None:
    response = await client.post(
        "/customers/resolve",
        json={"channel": "pos", "platform_user_id": "walk-in-1", "phone": " ", "email": ""},
    )
    assert response.status_code == 201
