"""Demo data for `make run`: two warehouses (Shanghai with cold chain, Beijing, each with
shipping costs per destination region, for routing), three SKUs with stock, four sales
channels and, when customer-svc is given, the default tag rule (a customer with two
cold-chain orders in 90 days is ``cold_chain_sensitive``: their next orders are cold chain).

Idempotent so that every `make run` can seed: a 409 means "already there". Stock receipts are
*added* quantities, so they are posted only for SKUs this run created; re-running therefore
does not keep inflating stock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from oms_devstack.errors import SeedError
from oms_devstack.service import http_client
from oms_devstack.signing import DEFAULT_DEMO_SECRET

WAREHOUSES: list[dict[str, Any]] = [
    {
        "code": "WH-SH",
        "name": "Shanghai DC",
        "region": "CN-SH",
        "latitude": 31.23,
        "longitude": 121.47,
        "capabilities": ["cold_chain"],
        "shipping_costs": {"CN-SH": "8", "CN-ZJ": "10", "CN-JS": "10", "CN-BJ": "18"},
    },
    {
        "code": "WH-BJ",
        "name": "Beijing DC",
        "region": "CN-BJ",
        "latitude": 39.90,
        "longitude": 116.40,
        "capabilities": [],
        "shipping_costs": {"CN-BJ": "6", "CN-TJ": "8", "CN-HE": "9", "CN-SH": "16"},
    },
]

#: Tag rules installed when customer-svc has none yet (an operator's rules are kept).
TAG_RULES: list[dict[str, str]] = [
    {
        "name": "cold-chain-regular",
        "tag": "cold_chain_sensitive",
        "expression": "cold_chain_orders_90d >= 2",
    },
]

SKUS: list[dict[str, Any]] = [
    {"sku": "SKU-1", "name": "Green tea 250g", "attributes": {}},
    {"sku": "SKU-2", "name": "Ceramic mug", "attributes": {"fragile": True}},
    {"sku": "SKU-COLD", "name": "Infant formula (chilled)", "attributes": {"cold_chain": True}},
]

#: (sku, warehouse, qty) received when the SKU is first created.
RECEIPTS: list[tuple[str, str, int]] = [
    ("SKU-1", "WH-SH", 100),
    ("SKU-1", "WH-BJ", 50),
    ("SKU-2", "WH-SH", 40),
    ("SKU-2", "WH-BJ", 40),
    ("SKU-COLD", "WH-SH", 30),
]

#: Generic webhook channels with the demo secret: four retail ones, and ``distributor``
#: (a distribution platform: order-svc credit-checks every order of it).
CHANNELS = ["web", "app", "live", "tmall", "distributor"]


def demo_secret() -> str:
    """The secret of the demo channels (``OMS_DEMO_SECRET`` or ``demo-secret``)."""
    return os.environ.get("OMS_DEMO_SECRET") or DEFAULT_DEMO_SECRET


@dataclass
class SeedReport:
    """What the seed created and what was already there (for one summary line)."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"demo data: {len(self.created)} created, {len(self.existing)} already there"


async def _post(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    label: str,
    report: SeedReport,
    headers: dict[str, str] | None = None,
) -> bool:
    """POST and classify; True when created (201), False when already there (409)."""
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise SeedError(f"demo seed: POST {url} failed: {exc!r}") from exc
    if response.status_code == 201:
        report.created.append(label)
        return True
    if response.status_code == 409:
        report.existing.append(label)
        return False
    raise SeedError(
        f"demo seed: POST {url} ({label}) answered {response.status_code}: {response.text[:300]}"
    )


async def _seed_tag_rules(
    client: httpx.AsyncClient, customers_url: str, report: SeedReport, auth: dict[str, str]
) -> None:
    try:
        current = await client.get(f"{customers_url}/tag-rules")
        if current.status_code == 200 and current.json().get("rules"):
            report.existing.append("tag rules")
            return
        response = await client.put(
            f"{customers_url}/tag-rules",
            json={"rules": TAG_RULES},
            headers={"X-Operator": "demo-seed", **auth},
        )
    except httpx.HTTPError as exc:
        raise SeedError(f"demo seed: tag rules failed: {exc!r}") from exc
    if response.status_code != 200:
        raise SeedError(
            f"demo seed: PUT tag rules answered {response.status_code}: {response.text[:300]}"
        )
    report.created.append("tag rules")


async def seed_demo(
    inventory_url: str,
    gateway_url: str,
    *,
    secret: str | None = None,
    customers_url: str | None = None,
    token: str | None = None,
) -> SeedReport:
    """Create the demo warehouses, SKUs, stock and channels over the services' HTTP APIs
    (and the default tag rules through customer-svc's, when ``customers_url`` is given).

    With ``AUTH_MODE=jwt`` the services want a bearer token holding ``inventory:adjust``,
    ``channels:admin`` (and ``customers:pii`` for the tag rules): ``token``, or else
    ``OMS_SEED_TOKEN`` from the environment. Without one only dev mode accepts the seed."""
    report = SeedReport()
    bearer = token or os.environ.get("OMS_SEED_TOKEN", "")
    auth = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    channel_secret = secret or demo_secret()
    async with http_client(timeout=15.0) as client:
        for warehouse in WAREHOUSES:
            label = f"warehouse {warehouse['code']}"
            await _post(client, f"{inventory_url}/warehouses", warehouse, label, report, auth)
        new_skus = set()
        for sku in SKUS:
            if await _post(client, f"{inventory_url}/skus", sku, f"sku {sku['sku']}", report, auth):
                new_skus.add(sku["sku"])
        for sku_code, warehouse_code, qty in RECEIPTS:
            if sku_code not in new_skus:
                continue
            receipt = {
                "sku": sku_code,
                "warehouse": warehouse_code,
                "qty": qty,
                "reason": "demo seed",
            }
            created = await _post(
                client,
                f"{inventory_url}/stock/receipts",
                receipt,
                f"stock {sku_code}@{warehouse_code} +{qty}",
                report,
                headers={"X-Operator": "demo-seed", **auth},
            )
            if not created:
                raise SeedError(f"demo seed: stock receipt {sku_code}@{warehouse_code} got 409")
        for name in CHANNELS:
            channel = {"name": name, "type": "generic", "secret": channel_secret}
            await _post(client, f"{gateway_url}/channels", channel, f"channel {name}", report, auth)
        if customers_url:
            await _seed_tag_rules(client, customers_url, report, auth)
    return report
