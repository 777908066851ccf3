"""Concurrent ``POST /customers/resolve`` requests are committed in groups, and each
answer is the one resolving the requests one after the other would give.

Statements are counted on the app's engine, as the database sees them: fewer identity
writes than requests proves that requests shared transactions.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import text

from oms_servicekit.testing import MigratedDatabase, recorded_statements, refused_inserts


def body(channel: str, user: str, phone: str | None = None, **more: Any) -> dict[str, Any]:
    return {"channel": channel, "platform_user_id": user, "phone": phone, **more}


async def resolve(
    client: httpx.AsyncClient, payload: dict[str, Any], correlation_id: str | None = None
) -> httpx.Response:
    headers = {"X-Correlation-Id": correlation_id} if correlation_id else {}
    return await client.post("/customers/resolve", json=payload, headers=headers)


async def rows(database: MigratedDatabase, sql: str) -> list[Any]:
    async with database.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def test_concurrent_resolutions_answer_as_one_after_the_other(
    client: httpx.AsyncClient, db, database: MigratedDatabase
) -> None:
    known = await resolve(client, body("web", "known", "+66 81 000 0001"))
    assert known.status_code == 201
    shared_phone = [body("app", f"a-{i}", "+66 81 000 0002") for i in range(6)]
    own_phones = [body("app", f"b-{i}", f"+66 81 000 01{i:02d}") for i in range(6)]
    same_identity = [body("shop", "dup", "+66 81 000 0003")] * 6
    lookups = [body("web", "known", "+66 81 000 0001")] * 6
    requests = shared_phone + own_phones + same_identity + lookups

    with recorded_statements(database.engine) as seen:
        answers = await asyncio.gather(*(resolve(client, r) for r in requests))

    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    out = [a.json() for a in answers]
    # One customer per phone; the first request of a phone creates it, the others match.
    shared = out[:6]
    assert len({o["customer_id"] for o in shared}) == 1
    assert Counter(o["matched_by"] for o in shared) == {"new": 1, "phone": 5}
    assert len({o["customer_id"] for o in out[6:12]}) == 6
    assert {o["matched_by"] for o in out[6:12]} == {"new"}
    # One identity six times: created once, then found by its platform id.
    dup = out[12:18]
    assert len({o["customer_id"] for o in dup}) == 1
    assert Counter(o["matched_by"] for o in dup) == {"new": 1, "platform_id": 5}
    assert [a.status_code for a in answers[12:18]].count(201) == 1
    assert {o["customer_id"] for o in out[18:]} == {known.json()["customer_id"]}
    assert {o["matched_by"] for o in out[18:]} == {"platform_id"}

    writes = [s for s in seen if s.startswith("INSERT INTO identities")]
    assert len(writes) < len(requests) // 2, f"{len(writes)} identity writes for {len(requests)}"
    [(customers,)] = await rows(database, "SELECT count(*) FROM customers")
    assert customers == 1 + 1 + 6 + 1
    # Audited: each creation and each link; the lookups of a linked identity are not.
    audited = Counter(
        action for (action,) in await rows(database, "SELECT action FROM audit_trail")
    )
    assert audited == {"create": 1 + 1 + 6 + 1, "resolve": 5}
    befores = await rows(database, "SELECT DISTINCT action, before FROM audit_trail")
    assert sorted(befores, key=str) == [("create", None), ("resolve", {})]
    announced = await rows(
        database, "SELECT count(*) FROM outbox WHERE event_type = 'CustomerUpdated'"
    )
    assert announced == [(1 + 1 + 6 + 1,)]


async def test_each_new_customer_is_announced_under_its_own_requests_correlation_id(
    client: httpx.AsyncClient, db, database: MigratedDatabase
) -> None:
    answers = await asyncio.gather(
        *(
            resolve(client, body("app", f"c-{i}", f"+66 81 000 02{i:02d}"), f"corr-{i}")
            for i in range(12)
        )
    )
    assert [a.status_code for a in answers] == [201] * 12
    expected = {a.json()["customer_id"]: f"corr-{i}" for i, a in enumerate(answers)}
    envelopes = [json.loads(p) for (p,) in await rows(database, "SELECT payload FROM outbox")]
    assert {e["payload"]["customer_id"]: e["correlation_id"] for e in envelopes} == expected
    audits = await rows(database, "SELECT entity_id, correlation_id FROM audit_trail")
    assert dict(audits) == expected


async def test_a_resolution_the_database_refuses_fails_alone_in_its_group(
    client: httpx.AsyncClient, db, database: MigratedDatabase
) -> None:
    async with refused_inserts(database.engine, "identities", "platform_user_id", "POISON"):
        users = [f"p-{i}" for i in range(8)] + ["POISON"] + [f"q-{i}" for i in range(8)]
        answers = await asyncio.gather(
            *(resolve(client, body("app", user)) for user in users), return_exceptions=True
        )

    poison = answers[8]
    assert isinstance(poison, Exception) or poison.status_code >= 500
    others = answers[:8] + answers[9:]
    assert all(isinstance(a, httpx.Response) and a.status_code == 201 for a in others), others
    linked = await rows(database, "SELECT platform_user_id FROM identities")
    assert sorted(u for (u,) in linked) == sorted(u for u in users if u != "POISON")
