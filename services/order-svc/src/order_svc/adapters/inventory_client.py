"""inventory-svc's open reservations, read over HTTP (``GET /reservations``).

Services share contracts, never tables: the consistency check reads what inventory holds
through its API, a large page at a time (50,000 open orders are 25 requests), with
order-svc's own credentials (``SERVICE_TOKEN``/``SERVICE_TOKEN_FILE``; in dev mode the
call names the service in ``X-Operator``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx

from oms_servicekit.service_auth import ServiceCredentials
from order_svc.domain.consistency import HeldStock, Line


class InventoryUnavailable(Exception):
    """inventory-svc did not answer, or answered something other than a page."""


class InventoryClient:
    def __init__(
        self,
        base_url: str,
        *,
        page_size: int = 2000,
        timeout_s: float = 10.0,
        credentials: ServiceCredentials | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._page_size = page_size
        self._timeout = httpx.Timeout(timeout_s)
        self._credentials = credentials or ServiceCredentials("order-svc")
        self._transport = transport

    async def open_reservations(self) -> list[HeldStock]:
        """Every order inventory holds open reservations for, all pages."""
        held: list[HeldStock] = []
        cursor: str | None = None
        # trust_env=False: a developer's HTTP(S)_PROXY must not capture service calls.
        async with httpx.AsyncClient(
            timeout=self._timeout, trust_env=False, transport=self._transport
        ) as client:
            while True:
                params: dict[str, str | int] = {"status": "open", "limit": self._page_size}
                if cursor:
                    params["cursor"] = cursor
                page = await self._get(client, params)
                held.extend(_held(item) for item in page["items"])
                cursor = page.get("next_cursor")
                if not cursor:
                    return held

    async def _get(self, client: httpx.AsyncClient, params: dict[str, str | int]) -> Any:
        url = f"{self._base}/reservations"
        try:
            response = await client.get(url, params=params, headers=self._credentials.headers())
        except httpx.HTTPError as exc:
            raise InventoryUnavailable(f"{url} unreachable ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise InventoryUnavailable(f"{url} answered {response.status_code}")
        try:
            page = response.json()
            page["items"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InventoryUnavailable(f"{url} answered something that is not a page") from exc
        return page


def _held(item: dict[str, Any]) -> HeldStock:
    try:
        return HeldStock(
            order_id=uuid.UUID(str(item["order_id"])),
            lines=tuple(
                Line(
                    line_no=int(ln["line_no"]),
                    sku=str(ln["sku"]),
                    qty=int(ln["qty"]),
                    warehouse=ln.get("warehouse"),
                )
                for ln in item["lines"]
            ),
            changed_at=datetime.fromisoformat(str(item.get("changed_at") or item["reserved_at"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InventoryUnavailable(f"a reservation inventory listed is malformed: {exc}") from exc
