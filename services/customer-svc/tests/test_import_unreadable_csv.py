"""A CSV import the csv module cannot read is the caller's mistake: a 422 problem naming
the body, and nothing imported (the API fuzzer found a bare CR in an unquoted field
answering 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from customer_svc.api.routes import router
from customer_svc.bootstrap import SERVICE
from oms_servicekit.http import create_app
from oms_servicekit.problems import PROBLEM_JSON
from oms_servicekit.testing import DatabaseOnlyRuntime

HEADER = "channel,platform_user_id,name\n"


@pytest.fixture
async def client(db: Any) -> AsyncIterator[httpx.AsyncClient]:
    runtime = DatabaseOnlyRuntime(db, producer=SERVICE)
    app = create_app(title=SERVICE, runtime=runtime, routers=[router])  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://customer-svc") as client:
        yield client


async def test_a_bare_carriage_return_in_an_unquoted_field_is_422_and_imports_nothing(
    client: httpx.AsyncClient,
) -> None:
    csv_text = HEADER + "crm,c1,Han\rMeimei\ncrm,c2,Wang Fang\n"
    r = await client.post(
        "/customers/import", content=csv_text, headers={"Content-Type": "text/csv"}
    )
    assert (r.status_code, r.headers["content-type"]) == (422, PROBLEM_JSON), r.text
    assert r.json()["field"] == "body"
    again = await client.post(
        "/customers/import",
        content=HEADER + "crm,c2,Wang Fang\n",
        headers={"Content-Type": "text/csv"},
    )
    assert [row["outcome"] for row in again.json()] == ["created"]
