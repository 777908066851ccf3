"""The whole stack as `make run AUTH=jwt` starts it: every API behind bearer tokens.

A second stack (its own databases and broker) trusts a signing key made for
this test only. Without a token nothing is read or changed; a token without the role is
403 and changes nothing; with the roles an order flows from a signed webhook to `routed`;
every operator action leaves an audit row naming the token's subject; the board reads
order-svc with the notifier's own service token; a partner's token sees its channel's
orders only; a token past its quota is told to come back later.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oms_devstack.stack import Stack
from oms_devstack.tokens import jwt_service_env, mint, service_token_env
from tests.e2e.conftest import Oms, eventually, order_body

ADMIN = "e2e-admin"
ADMIN_ROLES = (
    "orders:read",
    "orders:write",
    "inventory:adjust",
    "customers:pii",
    "channels:admin",
    "alerts:ack",
)
#: customer-svc's per-token quota in this stack: small enough for the test to exhaust
#: (the admin's polling of order-svc and inventory-svc keeps the default quota).
CUSTOMER_SVC_BURST = 40


@pytest.fixture(scope="module")
async def jwt_stack(
    artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Stack, Path]]:
    root = tmp_path_factory.mktemp("jwt-root")
    env = jwt_service_env(root)
    env.pop("API_DOCS")  # as deployed: no /docs in jwt mode
    service_env: dict[str, dict[str, str]] = {
        name: dict(values) for name, values in service_token_env(root).items()
    }
    service_env.setdefault("customer-svc", {}).update(
        {"RATE_LIMIT_PER_TOKEN_BURST": str(CUSTOMER_SVC_BURST), "RATE_LIMIT_PER_TOKEN_RPS": "0.2"}
    )
    # Its own broker: on the session's broker its consumer groups (same names as the
    # shared stack's) would share partitions with the shared stack's services.
    stack = Stack.for_tests(
        artifacts_dir / "e2e-jwt-stack",
        root=root,
        common_env=env,
        service_env=service_env,
    )
    await stack.start()
    try:
        yield stack, root
    finally:
        await stack.stop(drop_databases=True)


@pytest.fixture(scope="module")
async def admin(jwt_stack: tuple[Stack, Path]) -> AsyncIterator[Oms]:
    stack, root = jwt_stack
    token = mint(root, ADMIN, ADMIN_ROLES)
    async with httpx.AsyncClient(
        timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        oms = Oms(stack, client)
        await oms.setup_catalogue()
        yield oms


def bearer(root: Path, subject: str, roles: tuple[str, ...]) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(root, subject, roles)}"}


async def audit_of(oms: Oms, service_url: str, **params: str) -> list[dict[str, Any]]:
    r = await oms.http.get(f"{service_url}/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_without_a_token_nothing_is_read_or_changed_and_no_docs_are_served(
    jwt_stack: tuple[Stack, Path], admin: Oms
) -> None:
    stack, _ = jwt_stack
    async with httpx.AsyncClient(timeout=10) as anonymous:
        for url in (
            f"{stack.url('order-svc')}/orders",
            f"{stack.url('customer-svc')}/customers/00000000-0000-0000-0000-000000000001",
            f"{stack.url('inventory-svc')}/audit",
        ):
            r = await anonymous.get(url)
            assert r.status_code == 401, (url, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        r = await anonymous.post(
            f"{stack.url('inventory-svc')}/stock/adjustments",
            json={"sku": "SKU-X", "warehouse": "WH-SH", "delta": 5, "reason": "no token"},
            headers={"X-Operator": "mallory"},  # not a credential in jwt mode
        )
        assert r.status_code == 401, r.text
        for name in ("order-svc", "inventory-svc", "customer-svc", "channel-gateway", "notifier"):
            assert (await anonymous.get(f"{stack.url(name)}/docs")).status_code == 404
            assert (await anonymous.get(f"{stack.url(name)}/openapi.json")).status_code == 404
            assert (await anonymous.get(f"{stack.url(name)}/healthz")).status_code == 200


async def test_an_order_flows_and_a_reader_cannot_act_on_it(
    jwt_stack: tuple[Stack, Path], admin: Oms
) -> None:
    _, root = jwt_stack
    sku = await admin.new_sku({"WH-SH": 10})
    r = await admin.post_order("web", order_body(sku, qty=2))
    assert r.status_code == 202, r.text
    ref = r.json()["order_ref"]
    await eventually(lambda: admin.find_order(ref), lambda o: o["state"] == "routed", 60)

    reader = bearer(root, "e2e-reader", ("orders:read",))
    refused = await admin.http.post(
        f"{admin.orders}/orders/{ref}/cancel", json={"reason": "not mine to cancel"},
        headers=reader,
    )  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert (await admin.order(ref))["state"] == "routed"
    assert await audit_of(admin, admin.orders, actor="e2e-reader") == []

    # The stock receipt that set the SKU up is audited with the admin's subject.
    receipts = await audit_of(admin, admin.inventory, actor=ADMIN)
    assert any(sku in (entry["entity_id"] or "") for entry in receipts), receipts


async def test_the_board_reads_order_svc_with_the_notifiers_own_token(
    jwt_stack: tuple[Stack, Path], admin: Oms
) -> None:
    sku = await admin.new_sku({"WH-SH": 5})
    r = await admin.post_order("app", order_body(sku))
    ref = r.json()["order_ref"]
    await eventually(lambda: admin.find_order(ref), lambda o: o["state"] == "routed", 60)

    async def order_page() -> dict[str, Any]:
        page = await admin.http.get(f"{admin.notifier}/board/api/orders/{ref}")
        assert page.status_code == 200, page.text
        return page.json()  # type: ignore[no-any-return]

    page = await eventually(order_page, lambda p: p["order"]["available"], 30)
    assert page["order"]["data"]["state"] == "routed"
    assert page["picklist"]["available"], page["picklist"]


async def test_a_partner_token_sees_its_own_channel_only(
    jwt_stack: tuple[Stack, Path], admin: Oms
) -> None:
    _, root = jwt_stack
    sku = await admin.new_sku({"WH-SH": 5})
    mine = order_body(sku)
    theirs = order_body(sku)
    for channel, body in (("web", mine), ("tmall", theirs)):
        r = await admin.post_order(channel, body)
        assert r.status_code == 202, r.text
        await eventually(
            lambda ref=r.json()["order_ref"]: admin.find_order(ref),
            lambda o: o["state"] == "routed",
            60,
        )

    # A partner's token: no operator roles, only its channel in the `channel` claim.
    partner = {"Authorization": f"Bearer {mint(root, 'partner-web', (), channel='web')}"}
    orders = admin.orders
    own = await admin.http.get(f"{orders}/channels/web/orders/{mine['channel_order_id']}",
                               headers=partner)  # fmt: skip
    assert own.status_code == 200, own.text
    assert "+8613800000001" not in own.text and "li.lei@example.com" not in own.text
    listed = await admin.http.get(f"{orders}/channels/web/orders", headers=partner)
    assert listed.status_code == 200, listed.text
    for path in (
        f"/channels/tmall/orders/{theirs['channel_order_id']}",
        f"/channels/web/orders/{theirs['channel_order_id']}",
        "/channels/tmall/orders",
    ):
        other = await admin.http.get(f"{orders}{path}", headers=partner)
        assert other.status_code == 404, (path, other.text)
    internal = await admin.http.get(f"{orders}/orders", headers=partner)
    assert internal.status_code == 403, internal.text


async def test_a_token_past_its_quota_is_told_when_to_come_back(
    jwt_stack: tuple[Stack, Path], admin: Oms
) -> None:
    _, root = jwt_stack
    greedy = bearer(root, "e2e-greedy", ("customers:pii",))
    customers = jwt_stack[0].url("customer-svc")
    statuses: list[int] = []
    retry_after = None
    for _ in range(CUSTOMER_SVC_BURST + 5):
        r = await admin.http.get(f"{customers}/audit", params={"limit": 1}, headers=greedy)
        statuses.append(r.status_code)
        if r.status_code == 429:
            retry_after = r.headers.get("retry-after")
            assert r.headers["content-type"].startswith("application/problem+json")
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}, statuses
    assert retry_after is not None and int(retry_after) >= 1
    # Somebody else's token is not slowed down by it.
    calm = bearer(root, "e2e-calm", ("customers:pii",))
    r = await admin.http.get(f"{customers}/audit", params={"limit": 1}, headers=calm)
    assert r.status_code == 200, r.text


CHROMIUM = Path(os.environ.get("OMS_CHROMIUM", "/usr/bin/chromium"))


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")
async def test_the_board_in_a_browser_works_with_a_pasted_token_and_not_without(
    jwt_stack: tuple[Stack, Path], admin: Oms, artifacts_dir: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    _, root = jwt_stack
    sku = await admin.new_sku({"WH-SH": 5})
    r = await admin.post_order("live", order_body(sku))
    ref = r.json()["order_ref"]
    await eventually(lambda: admin.find_order(ref), lambda o: o["state"] == "routed", 60)
    token = mint(root, "e2e-board-viewer", ("orders:read",))

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(f"{admin.notifier}/board")
            # Without a token the page shell loads but shows no data.
            assert await page.locator("#total-orders").inner_text() == "0"
            await page.fill("#token", token)
            await page.press("#token", "Tab")  # "change": kept for the tab, page reloads
            await expect(page.locator("#live")).to_have_text("live (polling)", timeout=30_000)
            await page.wait_for_function(
                "() => Number(document.getElementById('total-orders').textContent) >= 1",
                timeout=30_000,
            )
            await page.goto(f"{admin.notifier}/board/orders/{ref}")
            await expect(page.locator("#order-view")).to_contain_text("routed", timeout=30_000)
            await page.screenshot(path=str(artifacts_dir / "board-jwt-order.png"))
        finally:
            await browser.close()
