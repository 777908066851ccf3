"""``python -m oms_devstack check`` (``make check``): do the running stack's orders and
stock reservations agree?

Asks order-svc (``GET /consistency``), which compares its orders with inventory-svc's
open reservations; prints every disagreement, or one line saying they agree. In
``AUTH_MODE=jwt`` (``make run AUTH=jwt``) it sends a short-lived demo token holding
``orders:read``; dev mode ignores the token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from oms_devstack.errors import DevstackError
from oms_devstack.service import http_client
from oms_devstack.specs import ORDER_SVC
from oms_devstack.state import StackState, state_path
from oms_devstack.tokens import key_path, mint

#: Exit codes: agree, disagree (an operator must look), could not check.
CONSISTENT, DISAGREEMENTS = 0, 1


def order_svc_url(root: Path) -> str:
    """order-svc of the stack ``make run`` recorded, else its default address."""
    state = StackState.load(state_path(root))
    if state is not None:
        for service in state.services:
            if service.name == ORDER_SVC.name:
                return service.url
    return f"http://127.0.0.1:{ORDER_SVC.port}"


def _headers(root: Path) -> dict[str, str]:
    headers = {"X-Operator": "devstack-check"}
    if key_path(root).exists():  # a jwt stack trusts this key; dev mode ignores the token
        token = mint(root, "devstack-check", ("orders:read",), ttl_s=300)
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def fetch(root: Path, grace_s: float | None) -> dict[str, Any]:
    """order-svc's answer to ``GET /consistency`` (a DevstackError when there is none)."""
    url = order_svc_url(root) + "/consistency"
    params = {"grace_s": grace_s} if grace_s is not None else {}
    try:
        async with http_client(timeout=120.0) as client:
            response = await client.get(url, params=params, headers=_headers(root))
    except httpx.HTTPError as exc:
        raise DevstackError(
            f"order-svc does not answer at {url} ({type(exc).__name__}); is the stack "
            "running? (make run)"
        ) from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:200]
        raise DevstackError(f"{url} answered {response.status_code}: {detail}")
    answer: dict[str, Any] = response.json()
    return answer


def render(answer: dict[str, Any]) -> tuple[list[str], int]:
    """The lines to print and the exit code."""
    found = answer.get("disagreements") or []
    if not found:
        return [
            f"consistent: {answer['orders_checked']} orders, "
            f"{answer['reservations_checked']} reservations"
        ], CONSISTENT
    lines = [f"{len(found)} disagreement(s) between orders and stock reservations:"]
    for d in found:
        lines.append(f"  {d['order_id']}  {d['state'] or '-'}  {d['kind']}  {d['detail']}")
    return lines, DISAGREEMENTS
