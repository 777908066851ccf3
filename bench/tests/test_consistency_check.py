"""The scenarios' ``consistency`` check: order-svc's ``GET /consistency`` polled until it
is empty; what is left after the timeout (or why it could not be asked) fails the check."""

from __future__ import annotations

from typing import Any, cast

import httpx

from bench.oms import consistency_check
from oms_devstack.stack import Stack


class StandIn:
    def url(self, name: str) -> str:
        return f"http://{name}"


def answering(*bodies: tuple[int, dict[str, Any]]) -> httpx.MockTransport:
    answers = list(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/consistency"
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


STACK = cast(Stack, StandIn())
ONE = {"order_id": "x", "state": "cancelled", "kind": "stock_held_for_closed_order", "detail": ""}


async def test_disagreements_in_flight_settle_and_the_check_passes() -> None:
    transport = answering((200, {"disagreements": [ONE]}), (200, {"disagreements": []}))
    found = await consistency_check(STACK, interval_s=0, timeout_s=5, transport=transport)
    assert found == (0, [])


async def test_disagreements_left_after_the_timeout_are_counted_and_listed() -> None:
    transport = answering((200, {"disagreements": [ONE, ONE]}))
    found = await consistency_check(STACK, interval_s=0, timeout_s=0, transport=transport)
    assert found == (2, [ONE, ONE])


async def test_a_check_that_cannot_be_run_is_not_zero() -> None:
    transport = answering((503, {"detail": "inventory-svc could not be read"}))
    count, _ = await consistency_check(STACK, interval_s=0, timeout_s=0, transport=transport)
    assert count == "answered 503"
