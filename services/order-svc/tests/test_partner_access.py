"""A channel's credentials reach only its own orders, on a real PostgreSQL, AUTH_MODE=jwt.

A partner token (``channel`` claim) lists and reads its own channel's orders, in a shape
without the buyer's personal data; any other channel, or another channel's order by its
real id, is the same 404 as what does not exist; it reads none of the operator routes.
Operators read any channel with ``orders:read``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from oms_servicekit.testing import MigratedDatabase

Mint = Callable[..., dict[str, str]]
NAME, PHONE, EMAIL = "Han Meimei", "+8613900000002", "meimei@example.com"
STREET = "7 Partner Lane"


def order_of(channel: str, channel_order_id: str) -> dict[str, Any]:
    return {
        "channel": channel,
        "channel_order_id": channel_order_id,
        "customer": {"platform_user_id": "u-9", "name": NAME, "phone": PHONE, "email": EMAIL},
        "lines": [{"line_no": 1, "sku": "SKU-1", "qty": 3, "unit_price": "2.50"}],
        "currency": "CNY",
        "paid": True,
        "shipping_address": {
            "name": NAME,
            "phone": PHONE,
            "region": "CN-SH",
            "city": "Shanghai",
            "line1": STREET,
        },
        "notes": f"call {PHONE}",
    }


async def place(api: httpx.AsyncClient, mint: Mint, channel: str, ref: str) -> str:
    r = await api.post("/orders", json=order_of(channel, ref), headers=mint("orders:write"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def two_channels(api: httpx.AsyncClient, mint: Mint) -> dict[str, list[str]]:
    """Orders A-1, A-2 of channel "alpha" (A-2 newest) and B-1 of channel "beta"."""
    return {
        "alpha": [await place(api, mint, "alpha", "A-1"), await place(api, mint, "alpha", "A-2")],
        "beta": [await place(api, mint, "beta", "B-1")],
    }


def assert_not_found(r: httpx.Response, detail: str) -> None:
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == detail


async def test_a_partner_lists_only_its_own_orders_newest_first(
    jwt_api: httpx.AsyncClient, db: MigratedDatabase, mint: Mint
) -> None:
    ids = await two_channels(jwt_api, mint)
    alpha = mint(sub="partner-alpha", channel="alpha")

    r = await jwt_api.get("/channels/alpha/orders", headers=alpha)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 2
    assert [o["id"] for o in page["items"]] == ids["alpha"][::-1]
    assert [o["channel_order_id"] for o in page["items"]] == ["A-2", "A-1"]
    first = page["items"][0]
    assert (first["state"], first["total"], first["currency"]) == ("paid", "7.50", "CNY")
    assert first["lines"] == [{"line_no": 1, "sku": "SKU-1", "qty": 3, "unit_price": "2.50"}]

    paged = await jwt_api.get("/channels/alpha/orders", params={"limit": 1}, headers=alpha)
    assert [o["channel_order_id"] for o in paged.json()["items"]] == ["A-2"]
    rest = await jwt_api.get(
        "/channels/alpha/orders", params={"limit": 1, "offset": 1}, headers=alpha
    )
    assert [o["channel_order_id"] for o in rest.json()["items"]] == ["A-1"]
    cancelled = await jwt_api.get(
        "/channels/alpha/orders", params={"state": "cancelled"}, headers=alpha
    )
    assert cancelled.json()["items"] == []
    too_many = await jwt_api.get("/channels/alpha/orders", params={"limit": 201}, headers=alpha)
    assert too_many.status_code == 422 and too_many.json()["field"] == "limit"

    one = await jwt_api.get("/channels/alpha/orders/A-1", headers=alpha)
    assert one.status_code == 200, one.text
    assert one.json()["id"] == ids["alpha"][0]


async def test_another_channel_is_404_like_one_that_does_not_exist(
    jwt_api: httpx.AsyncClient, db: MigratedDatabase, mint: Mint
) -> None:
    await two_channels(jwt_api, mint)
    # The token also lists orders:read: the channel claim still confines it.
    alpha = mint("orders:read", sub="partner-alpha", channel="alpha")

    assert_not_found(await jwt_api.get("/channels/beta/orders", headers=alpha), "no such channel")
    assert_not_found(
        await jwt_api.get("/channels/nowhere/orders", headers=alpha), "no such channel"
    )
    # beta's order by beta's real id, under beta and under alpha's own channel:
    for url in ("/channels/beta/orders/B-1", "/channels/alpha/orders/B-1"):
        assert_not_found(await jwt_api.get(url, headers=alpha), "no such order")
    assert_not_found(
        await jwt_api.get("/channels/alpha/orders/A-404", headers=alpha), "no such order"
    )
    assert_not_found(
        await jwt_api.get("/channels/nowhere/orders/B-1", headers=alpha), "no such order"
    )


async def test_operators_read_every_channel_and_others_are_refused(
    jwt_api: httpx.AsyncClient, db: MigratedDatabase, mint: Mint
) -> None:
    ids = await two_channels(jwt_api, mint)
    operator = mint("orders:read")
    for channel in ("alpha", "beta"):
        r = await jwt_api.get(f"/channels/{channel}/orders", headers=operator)
        assert r.status_code == 200, r.text
        assert sorted(o["id"] for o in r.json()["items"]) == sorted(ids[channel])
    assert (await jwt_api.get("/channels/beta/orders/B-1", headers=operator)).status_code == 200

    for headers in (mint("orders:write"), mint()):
        r = await jwt_api.get("/channels/alpha/orders", headers=headers)
        assert r.status_code == 403, r.text
        r = await jwt_api.get("/channels/alpha/orders/A-1", headers=headers)
        assert r.status_code == 403, r.text
    assert (await jwt_api.get("/channels/alpha/orders")).status_code == 401
    expired = mint("orders:read", expires_in=-3600)
    assert (await jwt_api.get("/channels/alpha/orders", headers=expired)).status_code == 401
    elsewhere = mint(channel="alpha", audience="another-system")
    assert (await jwt_api.get("/channels/alpha/orders", headers=elsewhere)).status_code == 401


async def test_a_partner_token_reads_none_of_the_operator_routes(
    jwt_api: httpx.AsyncClient, db: MigratedDatabase, mint: Mint
) -> None:
    ids = await two_channels(jwt_api, mint)
    alpha = mint(sub="partner-alpha", channel="alpha")
    own = ids["alpha"][0]
    for url in (
        "/orders",
        f"/orders/{own}",
        "/orders?channel=alpha",
        "/exceptions",
        "/exceptions/stats",
        "/sla/open",
        "/workflow/rules",
        "/audit",
    ):
        r = await jwt_api.get(url, headers=alpha)
        assert r.status_code == 403, (url, r.text)
    cancel = await jwt_api.post(f"/orders/{own}/cancel", json={"reason": "x"}, headers=alpha)
    assert cancel.status_code == 403


async def test_the_partner_answer_carries_no_personal_data(
    jwt_api: httpx.AsyncClient, db: MigratedDatabase, mint: Mint
) -> None:
    order_id = (await two_channels(jwt_api, mint))["alpha"][0]
    full = await jwt_api.get(f"/orders/{order_id}", headers=mint("orders:read", "customers:pii"))
    assert PHONE in full.text  # the operator's view has them: the check below can fail

    alpha = mint(sub="partner-alpha", channel="alpha")
    for url in ("/channels/alpha/orders", "/channels/alpha/orders/A-1"):
        r = await jwt_api.get(url, headers=alpha)
        assert r.status_code == 200, r.text
        for personal in (NAME, PHONE, EMAIL, STREET, "u-9", "Shanghai"):
            assert personal not in r.text, (url, personal)


async def test_dev_mode_is_open_and_a_channel_header_is_no_credential(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    for channel, ref in (("alpha", "A-1"), ("beta", "B-1")):
        assert (await api.post("/orders", json=order_of(channel, ref))).status_code == 201
    r = await api.get("/channels/beta/orders", headers={"X-Channel": "alpha"})
    assert r.status_code == 200
    assert [o["channel_order_id"] for o in r.json()["items"]] == ["B-1"]
    assert (await api.get(f"/channels/alpha/orders/{uuid.uuid4()}")).status_code == 404


async def test_an_order_reader_without_customers_pii_sees_the_address_masked(
    jwt_api: httpx.AsyncClient, mint: Mint
) -> None:
    order_id = await place(jwt_api, mint, "alpha", "A-PII")
    for path in (f"/orders/{order_id}", f"/orders/{order_id}/picklist"):
        masked = await jwt_api.get(path, headers=mint("orders:read"))
        assert masked.status_code == 200, masked.text
        for secret in (PHONE, STREET, NAME, EMAIL):
            assert secret not in masked.text, (path, secret)
        address = masked.json()["shipping_address"]
        assert (address["city"], address["region"]) == ("Shanghai", "CN-SH")
        assert address["phone"].endswith(PHONE[-4:])

        full = await jwt_api.get(path, headers=mint("orders:read", "customers:pii"))
        assert full.status_code == 200, full.text
        assert full.json()["shipping_address"]["line1"] == STREET
        assert full.json()["notes"] == f"call {PHONE}"

        refused = await jwt_api.get(path, headers=mint("customers:pii"))
        assert refused.status_code == 403, refused.text
