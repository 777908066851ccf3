"""customer-svc end to end: one person, two channels, one customer id."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import Oms, eventually, order_body


async def test_one_person_ordering_on_two_channels_is_one_customer(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 10})
    phone_digits = f"139{uuid.uuid4().int % 10**8:08d}"
    web_user, tmall_user = f"w-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    email = f"{uuid.uuid4().hex[:8]}@example.com"

    def buyer(platform_user_id: str, phone: str, mail: str | None) -> dict[str, object]:
        return {
            "platform_user_id": platform_user_id,
            "name": "Li Lei",
            "phone": phone,
            "email": mail,
        }

    # The same phone, written two ways; the e-mail only on one channel.
    national = f"{phone_digits[:3]} {phone_digits[3:7]} {phone_digits[7:]}"
    international = f"+86 {phone_digits[:3]}-{phone_digits[3:7]}-{phone_digits[7:]}"
    first = await oms.post_order("web", order_body(sku, customer=buyer(web_user, national, email)))
    assert first.status_code == 202, first.text
    web_ref = first.json()["order_ref"]
    web_order = await eventually(
        lambda: oms.find_order(web_ref), lambda o: o["customer_id"] is not None
    )

    second = await oms.post_order(
        "tmall", order_body(sku, customer=buyer(tmall_user, international, None))
    )
    assert second.status_code == 202, second.text
    tmall_ref = second.json()["order_ref"]
    tmall_order = await eventually(
        lambda: oms.find_order(tmall_ref), lambda o: o["customer_id"] is not None
    )

    assert tmall_order["customer_id"] == web_order["customer_id"]

    r = await oms.http.get(
        f"{oms.customers}/customers/{web_order['customer_id']}",
        headers={"X-Roles": "customers:pii"},
    )
    assert r.status_code == 200, r.text
    customer = r.json()
    assert customer["phone"] == f"+86{phone_digits}"
    assert {(i["channel"], i["platform_user_id"]) for i in customer["identities"]} == {
        ("web", web_user),
        ("tmall", tmall_user),
    }

    async def card() -> dict[str, object]:
        r = await oms.http.get(f"{oms.customers}/customers/{web_order['customer_id']}/card")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    seen = await eventually(card, lambda c: c["orders"]["count"] == 2)
    assert {o["channel"] for o in seen["orders"]["last_orders"]} == {"web", "tmall"}
    # Without the PII role the phone is masked.
    assert seen["customer"]["phone"] != f"+86{phone_digits}"
