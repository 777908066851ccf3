"""Reads from other services for the board's order page, degrading instead of failing.

The board must stay usable when order-svc or customer-svc is down, slow or does not
have an endpoint yet: every call has a short timeout and answers a :class:`PeerAnswer`
saying whether the data is there, never an exception.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from oms_servicekit.service_auth import ServiceCredentials

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeerAnswer:
    """What a peer said: ``data`` when it answered 200, else why not (``reason``)."""

    available: bool
    data: Any = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"available": self.available, "data": self.data, "reason": self.reason}


class Peers:
    """order-svc and customer-svc, as the board reads them, with the notifier's own
    credentials (a service token holding ``orders:read`` in ``AUTH_MODE=jwt``)."""

    def __init__(
        self,
        *,
        order_svc_url: str,
        customer_svc_url: str,
        timeout_s: float,
        credentials: ServiceCredentials | None = None,
    ) -> None:
        self._order_svc = order_svc_url.rstrip("/")
        self._customer_svc = customer_svc_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout_s)
        self._credentials = credentials or ServiceCredentials("notifier")

    async def order(self, order_id: uuid.UUID) -> PeerAnswer:
        """The order with its history (order-svc ``GET /orders/{id}``)."""
        return await self._get(f"{self._order_svc}/orders/{order_id}")

    async def picklist(self, order_id: uuid.UUID) -> PeerAnswer:
        """The order's pick list with its notes (order-svc ``GET /orders/{id}/picklist``)."""
        return await self._get(f"{self._order_svc}/orders/{order_id}/picklist")

    async def open_sla(self, *, limit: int, offset: int) -> PeerAnswer:
        """Running SLA clocks, nearest deadline first (order-svc ``GET /sla/open``)."""
        return await self._get(f"{self._order_svc}/sla/open?limit={limit}&offset={offset}")

    async def customer_card(self, customer_id: uuid.UUID) -> PeerAnswer:
        """The customer's card (customer-svc ``GET /customers/{id}/card``), PII masked."""
        return await self._get(f"{self._customer_svc}/customers/{customer_id}/card")

    async def _get(self, url: str) -> PeerAnswer:
        try:
            # trust_env=False: a developer's HTTP(S)_PROXY must not capture service calls.
            async with httpx.AsyncClient(timeout=self._timeout, trust_env=False) as client:
                response = await client.get(url, headers=self._credentials.headers())
        except httpx.HTTPError as exc:
            log.warning("peer unavailable", extra={"url": url, "error": type(exc).__name__})
            return PeerAnswer(False, reason=f"unreachable ({type(exc).__name__})")
        if response.status_code != 200:
            return PeerAnswer(False, reason=f"answered {response.status_code}")
        try:
            return PeerAnswer(True, data=response.json())
        except ValueError:
            return PeerAnswer(False, reason="answered something that is not JSON")


def card_summary(card: dict[str, Any]) -> dict[str, Any]:
    """The few facts of a customer card the order page shows (tolerates missing parts)."""
    customer = card.get("customer") or {}
    orders = card.get("orders") or {}
    return {
        "customer_id": customer.get("id"),
        "name": customer.get("display_name") or customer.get("name"),
        "tags": [t.get("tag") or t.get("name") for t in card.get("tags") or []],
        "delivery_requirements": customer.get("delivery_requirements"),
        "orders": orders.get("count"),
        "orders_value": orders.get("value"),
        "cancelled": orders.get("cancelled"),
        "complaints": len(card.get("complaints") or []),
    }
