"""Identity resolution table, merges, profiles, cards, tags, PII and imports over the
HTTP API on a real database (events through the production consumers on a broker)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from customer_svc.adapters.tables import merge_proposals
from oms_contracts.events import (
    Address,
    CustomerIdentity,
    CustomerMerged,
    CustomerUpdated,
    OrderCancelled,
    OrderCreated,
    OrderLine,
)
from oms_servicekit.audit import audit_trail

PII = {"X-Roles": "support, customers:pii"}
OP = {"X-Operator": "alice"}
ADDR = {"region": "CN-SH", "city": "Shanghai", "line1": "1 Demo Road", "postal_code": "200000"}


async def resolve(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await client.post("/customers/resolve", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()  # type: ignore[no-any-return]


async def events(read_outbox, event_type: str) -> list[Any]:
    return [r["envelope"].payload for r in await read_outbox() if r["event_type"] == event_type]


# -- 1. identity resolution, table-driven ---------------------------------------------

CASES = [
    pytest.param(
        {"channel": "web", "platform_user_id": "u1", "phone": "138 0000 0001"},
        {"channel": "web", "platform_user_id": "u1", "phone": "+1 415 555 0100"},
        "platform_id",
        id="same platform id",
    ),
    pytest.param(
        {"channel": "web", "platform_user_id": "u1", "phone": "138 0000 0001"},
        {"channel": "tmall", "platform_user_id": "t9", "phone": "+86 138-0000-0001"},
        "phone",
        id="same phone, two formats",
    ),
    pytest.param(
        {"channel": "web", "platform_user_id": "u1", "email": "Li.Lei@Example.com"},
        {"channel": "app", "platform_user_id": "a7", "email": "li.lei@EXAMPLE.COM"},
        "email",
        id="same e-mail, two cases",
    ),
]


@pytest.mark.parametrize(("first", "second", "matched_by"), CASES)
async def test_resolution_links_the_same_person(
    client, first: dict[str, Any], second: dict[str, Any], matched_by: str
) -> None:
    a = await resolve(client, **first)
    b = await resolve(client, **second)
    assert a["matched_by"] == "new"
    assert (b["customer_id"], b["matched_by"]) == (a["customer_id"], matched_by)
    assert b["merge_proposal"] is None
    body = (await client.get(f"/customers/{a['customer_id']}", headers=PII)).json()
    # Every identity keeps its link.
    assert len(body["identities"]) == (1 if matched_by == "platform_id" else 2)


async def test_similar_name_at_the_same_address_is_only_proposed(client, db) -> None:
    a = await resolve(client, channel="web", platform_user_id="u1", name="Li Lei", address=ADDR)
    b = await resolve(
        client,
        channel="live",
        platform_user_id="l5",
        name="Lei  Li",
        address={**ADDR, "line1": "1 Demo Road."},
    )
    assert b["matched_by"] == "new"
    assert b["customer_id"] != a["customer_id"]  # not merged
    proposal = b["merge_proposal"]
    assert proposal["candidate_id"] == a["customer_id"]
    assert proposal["name_score"] >= 85
    async with db() as session:
        [row] = (await session.execute(select(merge_proposals))).all()
    assert (row.id, row.status) == (uuid.UUID(proposal["id"]), "open")
    card = (await client.get(f"/customers/{a['customer_id']}/card")).json()
    assert [p["candidate_id"] for p in card["open_merge_proposals"]] == [b["customer_id"]]


async def test_other_name_at_the_same_address_is_not_proposed(client) -> None:
    await resolve(client, channel="web", platform_user_id="u1", name="Li Lei", address=ADDR)
    b = await resolve(client, channel="web", platform_user_id="u2", name="Han Meimei", address=ADDR)
    assert b["merge_proposal"] is None


# -- 2. merge and unmerge ---------------------------------------------------------------


def order_event(
    platform_user_id: str,
    *,
    channel: str = "web",
    phone: str | None = None,
    total: str = "100",
    qty: int = 1,
    reqs: list[str] | None = None,
) -> OrderCreated:
    return OrderCreated(
        order_id=uuid.uuid4(),
        channel=channel,
        channel_order_id=uuid.uuid4().hex,
        customer=CustomerIdentity(platform_user_id=platform_user_id, name="Li Lei", phone=phone),
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=qty, unit_price=Decimal(total) / qty)],
        currency="CNY",
        total=Decimal(total),
        shipping_address=Address(**ADDR),
        delivery_requirements=reqs or [],
        created_at=datetime.now(UTC),
    )


async def test_merge_needs_an_operator(client) -> None:
    a = await resolve(client, channel="web", platform_user_id="u1")
    b = await resolve(client, channel="app", platform_user_id="u2")
    r = await client.post(
        "/customers/merge", json={"surviving_id": a["customer_id"], "merged_id": b["customer_id"]}
    )
    assert r.status_code == 401
    assert r.json()["field"] == "X-Operator"


async def test_merge_moves_identities_orders_tags_audited_and_unmerge_reverts(
    client, db, deliver, read_outbox
) -> None:
    a = await resolve(client, channel="web", platform_user_id="u1")
    await deliver(order_event("u2", channel="app"))
    b = (await resolve(client, channel="app", platform_user_id="u2"))["customer_id"]
    survivor = a["customer_id"]
    await client.post(f"/customers/{b}/tags", json={"add": ["wholesale"]}, headers=OP)

    merged_r = await client.post(
        "/customers/merge", json={"surviving_id": survivor, "merged_id": b}, headers=OP
    )
    assert merged_r.status_code == 201, merged_r.text
    card = (await client.get(f"/customers/{survivor}/card")).json()
    assert {i["channel"] for i in card["customer"]["identities"]} == {"web", "app"}
    assert card["orders"]["count"] == 1
    assert [t["tag"] for t in card["tags"]] == ["wholesale"]
    assert (await client.get(f"/customers/{b}")).json()["merged_into"] == survivor
    # The app identity now resolves to the survivor.
    again = await resolve(client, channel="app", platform_user_id="u2")
    assert again["customer_id"] == survivor

    [merged] = await events(read_outbox, "CustomerMerged")
    event = CustomerMerged.model_validate(merged)
    assert (str(event.surviving_id), str(event.merged_id), event.actor) == (survivor, b, "alice")
    async with db() as session:
        actions = [r.action for r in await session.execute(select(audit_trail.c.action))]
    assert "merge" in actions

    twice = await client.post(
        "/customers/merge", json={"surviving_id": survivor, "merged_id": b}, headers=OP
    )
    assert twice.status_code == 409

    merge_id = merged_r.json()["merge_id"]
    r = await client.post(f"/customers/{b}/unmerge", headers=OP)
    assert r.status_code == 200, r.text
    assert r.json() == {"merge_id": merge_id, "surviving_id": survivor, "merged_id": b}
    card = (await client.get(f"/customers/{survivor}/card")).json()
    assert [i["channel"] for i in card["customer"]["identities"]] == ["web"]
    assert card["orders"]["count"] == 0 and card["tags"] == []
    back = (await client.get(f"/customers/{b}/card")).json()
    assert back["customer"]["merged_into"] is None
    assert back["orders"]["count"] == 1 and [t["tag"] for t in back["tags"]] == ["wholesale"]
    async with db() as session:
        actions = [r.action for r in await session.execute(select(audit_trail.c.action))]
    assert "unmerge" in actions


async def test_no_unmerge_once_an_order_was_placed_since(client, deliver) -> None:
    a = (await resolve(client, channel="web", platform_user_id="u1"))["customer_id"]
    b = (await resolve(client, channel="app", platform_user_id="u2"))["customer_id"]
    r = await client.post("/customers/merge", json={"surviving_id": a, "merged_id": b}, headers=OP)
    assert r.status_code == 201
    await deliver(order_event("u2", channel="app"))
    r = await client.post(f"/customers/{b}/unmerge", headers=OP)
    assert r.status_code == 409
    assert "since the merge" in r.json()["detail"]


# -- 3. profile fields --------------------------------------------------------------------


async def test_patch_validates_and_announces_changes(client, read_outbox) -> None:
    cid = (await resolve(client, channel="web", platform_user_id="u1"))["customer_id"]
    r = await client.patch(
        f"/customers/{cid}",
        json={
            "delivery_requirements": {
                "fragile": True,
                "window": {"start": "09:00", "end": "18:00", "weekdays": [1, 2, 3]},
            },
            "invoice": {"title": "ACME  Ltd", "tax_id": "91310000mA1fl1234x"},
            "default_address": ADDR,
        },
        headers=PII,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["invoice"] == {"title": "ACME Ltd", "tax_id": "91310000MA1FL1234X"}
    assert body["default_address"]["line1"] == "1 Demo Road"
    updates = [
        CustomerUpdated.model_validate(p) for p in await events(read_outbox, "CustomerUpdated")
    ]
    assert updates[-1].changed_fields == ["default_address", "delivery_requirements", "invoice"]
    assert updates[-1].delivery_requirements == ["fragile"]

    # Masked without the PII role.
    masked = (await client.get(f"/customers/{cid}")).json()
    assert masked["default_address"]["line1"] == "1***"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"delivery_requirements": {"cold_chain": "maybe"}}, "delivery_requirements.cold_chain"),
        (
            {"delivery_requirements": {"window": {"start": "18:00", "end": "09:00"}}},
            "delivery_requirements.window",
        ),
        (
            {"delivery_requirements": {"window": {"start": "25:00", "end": "26:00"}}},
            "delivery_requirements.window.start",
        ),
        ({"invoice": {"title": "ACME", "tax_id": "12-3"}}, "invoice.tax_id"),
        ({"invoice": {"title": "ACME"}}, "invoice.tax_id"),
        ({"default_address": {"line1": "no region"}}, "default_address.region"),
        ({"delivery_requirements": None}, "delivery_requirements"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_profile_values_are_a_422_naming_the_field(
    client, read_outbox, patch: dict[str, Any], field: str
) -> None:
    cid = (await resolve(client, channel="web", platform_user_id="u1"))["customer_id"]
    r = await client.patch(f"/customers/{cid}", json=patch)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert len(await events(read_outbox, "CustomerUpdated")) == 1  # only "created"


async def test_channel_policy_requires_fields(client) -> None:
    r = await client.put(
        "/channel-policies/b2b", json={"required_fields": ["invoice.tax_id"]}, headers=OP
    )
    assert r.status_code == 200, r.text
    cid = (await resolve(client, channel="b2b", platform_user_id="c1"))["customer_id"]
    r = await client.patch(f"/customers/{cid}", json={"display_name": "ACME"})
    assert r.status_code == 422
    assert r.json()["field"] == "invoice.tax_id"
    r = await client.patch(
        f"/customers/{cid}", json={"invoice": {"title": "ACME", "tax_id": "12345678"}}
    )
    assert r.status_code == 200, r.text


# -- 4. card and complaints --------------------------------------------------------------


async def test_card_summarizes_orders_and_complaints(client, deliver) -> None:
    first = order_event("u1", total="100")
    await deliver(first)
    await deliver(order_event("u1", total="50"))
    await deliver(order_event("u1", total="30"))
    await deliver(
        OrderCancelled(
            order_id=first.order_id,
            channel="web",
            reason="buyer",
            actor="buyer",
            cancelled_at=datetime.now(UTC),
        ),
    )
    cid = (await resolve(client, channel="web", platform_user_id="u1"))["customer_id"]
    r = await client.post(
        f"/customers/{cid}/complaints",
        json={"order_id": str(first.order_id), "category": "late", "text": "two days late"},
    )
    assert r.status_code == 201, r.text

    card = (await client.get(f"/customers/{cid}/card")).json()
    assert card["orders"]["count"] == 2
    assert Decimal(card["orders"]["value"]) == Decimal("80")
    assert card["orders"]["cancelled"] == 1
    assert len(card["orders"]["last_orders"]) == 3
    assert [c["category"] for c in card["complaints"]] == ["late"]
    assert card["addresses"][0]["city"] == "Shanghai"
    assert card["addresses"][0]["line1"] == "1***"  # masked without the role
    full = (await client.get(f"/customers/{cid}/card", headers=PII)).json()
    assert full["addresses"][0]["line1"] == "1 Demo Road"


async def test_complaint_for_unknown_customer_is_404(client) -> None:
    r = await client.post(f"/customers/{uuid.uuid4()}/complaints", json={"text": "x"})
    assert r.status_code == 404


# -- 5. tag rules -------------------------------------------------------------------------

RULES = {
    "rules": [
        {"name": "cold", "tag": "cold_chain_sensitive", "expression": "cold_chain_orders_90d >= 2"},
        {"name": "fragile", "tag": "fragile_frequent", "expression": "fragile_items_180d >= 3"},
        {
            "name": "vip",
            "tag": "vip_free_returns",
            "expression": "lifetime_value > 1000 and complaints == 0",
        },
    ]
}


async def test_tag_rules_roundtrip_and_refuse_syntax_errors(client) -> None:
    assert (await client.put("/tag-rules", json=RULES)).status_code == 401
    r = await client.put("/tag-rules", json=RULES, headers=OP)
    assert r.status_code == 200, r.text
    assert (await client.get("/tag-rules")).json() == RULES

    bad = {
        "rules": [
            RULES["rules"][0],
            {"name": "x", "tag": "x", "expression": "order_count >= and 1"},
        ]
    }
    r = await client.put("/tag-rules", json=bad, headers=OP)
    assert r.status_code == 422
    assert r.json()["field"] == "rules.1.expression"
    assert r.json()["position"] == 15
    assert (await client.get("/tag-rules")).json() == RULES  # unchanged


async def test_rules_tag_customers_from_order_events(client, deliver, read_outbox) -> None:
    await client.put("/tag-rules", json=RULES, headers=OP)
    await deliver(order_event("u1", reqs=["cold_chain"]))
    assert await events(read_outbox, "CustomerUpdated") and not [
        u for u in await events(read_outbox, "CustomerUpdated") if u["tags"]
    ]
    await deliver(order_event("u1", reqs=["cold_chain", "fragile"], qty=3))
    tagged = [
        CustomerUpdated.model_validate(u)
        for u in await events(read_outbox, "CustomerUpdated")
        if u["tags"]
    ]
    assert tagged[-1].tags == ["cold_chain_sensitive", "fragile_frequent"]
    assert tagged[-1].delivery_requirements == ["cold_chain"]
    assert tagged[-1].changed_fields == ["tags"]
    cid = tagged[-1].customer_id
    card = (await client.get(f"/customers/{cid}/card")).json()
    assert {(t["tag"], t["source"], t["rule"]) for t in card["tags"]} == {
        ("cold_chain_sensitive", "rule", "cold"),
        ("fragile_frequent", "rule", "fragile"),
    }


async def test_vip_tag_goes_with_a_complaint(client, deliver, read_outbox) -> None:
    await client.put("/tag-rules", json=RULES, headers=OP)
    await deliver(order_event("u1", total="1500"))
    cid = (await resolve(client, channel="web", platform_user_id="u1"))["customer_id"]
    card = (await client.get(f"/customers/{cid}/card")).json()
    assert [t["tag"] for t in card["tags"]] == ["vip_free_returns"]
    await client.post(f"/customers/{cid}/complaints", json={"text": "broken"})
    card = (await client.get(f"/customers/{cid}/card")).json()
    assert card["tags"] == []
    last = CustomerUpdated.model_validate((await events(read_outbox, "CustomerUpdated"))[-1])
    assert last.changed_fields == ["tags"] and last.tags == []


# -- 6. PII -------------------------------------------------------------------------------


async def test_pii_only_for_the_role(client) -> None:
    cid = (
        await resolve(
            client,
            channel="web",
            platform_user_id="u1",
            phone="138 0000 0001",
            email="li.lei@example.com",
            name="Li Lei",
        )
    )["customer_id"]
    masked = (await client.get(f"/customers/{cid}")).json()
    assert masked["phone"] == "+86*******0001"
    assert masked["email"] == "l***@example.com"
    assert masked["identities"][0]["phone"] == "+86*******0001"
    assert masked["identities"][0]["name"] == "L***"
    assert "Li Lei" not in str(masked)
    card = (await client.get(f"/customers/{cid}/card")).json()
    assert "Li Lei" not in str(card) and "13800000001" not in str(card)
    other_role = (await client.get(f"/customers/{cid}", headers={"X-Roles": "support"})).json()
    assert other_role["phone"] == masked["phone"]
    full = (await client.get(f"/customers/{cid}", headers=PII)).json()
    assert (full["phone"], full["email"]) == ("+8613800000001", "li.lei@example.com")
    assert full["identities"][0]["name"] == "Li Lei"


async def test_pii_is_masked_in_logs(client, caplog) -> None:
    caplog.set_level("DEBUG")
    await resolve(
        client,
        channel="web",
        platform_user_id="user-secret-1",
        name="Li Lei",
        phone="138 0000 0001",
        email="li.lei@example.com",
        address=ADDR,
    )
    await client.patch(
        f"/customers/{uuid.uuid4()}", json={"invoice": {"title": "x", "tax_id": "no"}}
    )
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in ("13800000001", "li.lei@example.com", "1 Demo Road", "user-secret-1"):
        assert secret not in text


# -- 7. CSV import ------------------------------------------------------------------------


async def test_csv_import_reports_each_row(client) -> None:
    existing = await resolve(client, channel="web", platform_user_id="u1", phone="13800000001")
    await resolve(client, channel="web", platform_user_id="u9", name="Wang Fang", address=ADDR)
    csv_text = (
        "channel,platform_user_id,name,phone,email,region,city,line1,postal_code\n"
        "crm,c1,Han Meimei,13900000002,han@example.com,CN-BJ,Beijing,2 Road,100000\n"
        "crm,c2,,+86 138-0000-0001,,,,,\n"
        "crm,c3,Wang  Fang,,,CN-SH,Shanghai,1 Demo Road,200000\n"
        "crm,c4,Bad,call me,,,,,\n"
        ",c5,No channel,,,,,,\n"
        "crm,c6,x,,,,,,,extra\n"
    )
    r = await client.post(
        "/customers/import", content=csv_text, headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    rows = {row["row"]: row for row in r.json()}
    assert rows[2]["outcome"] == "created"
    assert (rows[3]["outcome"], rows[3]["customer_id"], rows[3]["matched_by"]) == (
        "matched",
        existing["customer_id"],
        "phone",
    )
    assert rows[4]["outcome"] == "merge_proposed"
    assert rows[4]["merge_proposal"]["candidate_id"]
    assert rows[5]["outcome"] == "rejected" and rows[5]["reason"].startswith("phone")
    assert rows[6]["outcome"] == "rejected" and rows[6]["reason"].startswith("channel")
    assert rows[7]["outcome"] == "rejected"


async def test_csv_import_needs_the_key_columns(client) -> None:
    r = await client.post("/customers/import", content="name,phone\nx,y\n")
    assert r.status_code == 422
