"""A value the database driver cannot encode is the caller's mistake (422), not a 500.

asyncpg refuses an integer beyond bigint or a date before year 1 (once in UTC) with an
``OverflowError`` under its ``DataError``, under SQLAlchemy's ``DBAPIError``: nothing was
stored, and the caller can send another value. An ``OverflowError`` of our own code is a
bug and stays a 500.
"""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from oms_servicekit.problems import PROBLEM_JSON, install_problem_handlers, is_unstorable_text


def refused_by_the_driver(cause: OverflowError) -> DBAPIError:
    """The exception chain asyncpg and SQLAlchemy raise for a value out of range."""
    try:
        try:
            raise cause
        except OverflowError as exc:
            raise asyncpg.exceptions.DataError("invalid input for query argument $1") from exc
    except asyncpg.exceptions.DataError as exc:
        error = DBAPIError("SELECT $1", {}, exc)
        error.__cause__ = exc
        return error


def test_an_overflow_under_a_driver_error_is_an_unstorable_value() -> None:
    assert is_unstorable_text(refused_by_the_driver(OverflowError("value out of int64 range")))
    assert is_unstorable_text(refused_by_the_driver(OverflowError("date value out of range")))


def test_an_overflow_of_our_own_code_is_not() -> None:
    assert not is_unstorable_text(OverflowError("math range error"))


async def test_a_value_out_of_range_for_the_database_answers_422_problem_json() -> None:
    api = FastAPI()
    install_problem_handlers(api)

    @api.get("/huge")
    async def huge() -> None:
        raise refused_by_the_driver(OverflowError("value out of int64 range"))

    @api.get("/bug")
    async def bug() -> None:
        raise OverflowError("math range error")

    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        refused = await client.get("/huge")
        broken = await client.get("/bug")
    assert (refused.status_code, refused.headers["content-type"]) == (422, PROBLEM_JSON)
    assert broken.status_code == 500
