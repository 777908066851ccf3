"""Errors answer as problem+json: validation names the field; outages are 503, not 500."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError

from oms_servicekit.problems import PROBLEM_JSON, Problem, install_problem_handlers


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qty: int = Field(gt=0)


def app() -> FastAPI:
    api = FastAPI()
    install_problem_handlers(api)

    @api.post("/things")
    async def things(body: Body) -> dict[str, int]:
        return {"qty": body.qty}

    @api.get("/db-down")
    async def db_down() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    @api.get("/bug")
    async def bug() -> None:
        raise RuntimeError("boom")

    @api.get("/conflict")
    async def conflict() -> None:
        raise Problem(409, "cannot go from shipped to paid", field="state")

    return api


async def call(method: str, path: str, **kw: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kw)  # type: ignore[arg-type]


async def test_invalid_body_is_422_naming_the_field_and_unknown_fields_are_refused() -> None:
    r = await call("POST", "/things", json={"qty": 0, "state": "paid"})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM_JSON
    assert {e["field"] for e in r.json()["errors"]} == {"qty", "state"}


async def test_a_database_outage_is_503_with_retry_after() -> None:
    r = await call("GET", "/db-down")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.headers["content-type"] == PROBLEM_JSON


async def test_a_bug_is_a_500_problem_without_internals() -> None:
    r = await call("GET", "/bug")
    assert r.status_code == 500
    assert "boom" not in r.text


async def test_a_domain_problem_keeps_its_status_and_field() -> None:
    r = await call("GET", "/conflict")
    assert (r.status_code, r.json()["field"]) == (409, "state")
