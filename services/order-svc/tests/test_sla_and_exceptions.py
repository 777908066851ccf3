"""SLA clocks, the scheduler, the report and the exception queue on a real PostgreSQL.

No broker: events are read from the outbox. The scheduler is given its own clock, so
"the deadline has passed" is a chosen instant, not a sleep.
"""

from __future__ import annotations

import asyncio
import statistics
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text

from oms_contracts.events import (
    RejectedLine,
    ReservedLine,
    StockRejected,
    StockReserved,
)
from oms_servicekit.testing import MigratedDatabase
from order_svc import sla
from order_svc.adapters.repository import OrderRepository
from order_svc.adapters.tables import order_sla, order_transitions, orders
from order_svc.domain.sla import SlaPolicy
from order_svc.publishing import publish_transitions
from order_svc.sla import SlaScheduler

OPERATOR = {"X-Operator": "alice"}
CONSUMER = "order-svc"
#: The review allowance of the "web" channel in these tests (normal orders).
ALLOWANCE_S = 100


@pytest.fixture(autouse=True)
def policy() -> Iterator[None]:
    before = sla.current_policy()
    sla.configure(SlaPolicy.with_overrides({"review": {"web": {"normal": ALLOWANCE_S}}}))
    yield
    sla.configure(before)


def scheduler_at(db: MigratedDatabase, at: datetime, batch_size: int = 200) -> SlaScheduler:
    return SlaScheduler(db.uow, batch_size=batch_size, clock=lambda: at)


async def place(api: httpx.AsyncClient, channel: str = "web", **overrides: Any) -> str:
    body: dict[str, Any] = {
        "channel": channel,
        "channel_order_id": f"FE-{uuid.uuid4().hex[:8]}",
        "customer": {"platform_user_id": "u-1", "name": "Li Lei"},
        "lines": [{"line_no": 1, "sku": "SKU-1", "qty": 2, "unit_price": "19.90"}],
        "currency": "CNY",
        "paid": True,
        "shipping_address": {"region": "CN-SH", "city": "Shanghai"},
    }
    body.update(overrides)
    r = await api.post("/orders", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def reject(db: MigratedDatabase, order_id: str) -> None:
    event = StockRejected(
        order_id=uuid.UUID(order_id),
        lines=[RejectedLine(line_no=1, sku="SKU-1", qty=2, reason="insufficient", available=0)],
        rejected_at=datetime.now(UTC),
    )
    await db.deliver(event)


async def reserve(db: MigratedDatabase, order_id: str) -> None:
    event = StockReserved(
        order_id=uuid.UUID(order_id),
        lines=[ReservedLine(line_no=1, sku="SKU-1", qty=2, warehouse="WH-SH")],
        reserved_at=datetime.now(UTC),
    )
    await db.deliver(event)


async def events(db: MigratedDatabase, event_type: str, key: str | None = None) -> list[Any]:
    return [
        row["envelope"].payload
        for row in await db.outbox_rows()
        if row["event_type"] == event_type and (key is None or row["key"] == key)
    ]


async def open_exceptions(api: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    r = await api.get("/exceptions", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def assert_problem(r: httpx.Response, status: int, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert r.json()["field"] == field, r.json()


# -- the exception queue is fed by transitions -------------------------------------------


async def test_rejected_stock_opens_one_classified_exception_with_its_event(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id = await place(api)
    await reject(db, order_id)

    items = await open_exceptions(api, cause="stock_rejected")
    assert [(i["order_id"], i["cause"], i["state"]) for i in items] == [
        (order_id, "stock_rejected", "open")
    ]
    assert items[0]["detail"] == "SKU-1: insufficient"
    assert items[0]["order_state"] == "exception"
    raised = await events(db, "OrderExceptionRaised", order_id)
    assert [(e["cause"], e["exception_id"]) for e in raised] == [("stock_rejected", items[0]["id"])]
    assert await open_exceptions(api, cause="credit_refused") == []

    stats = (await api.get("/exceptions/stats")).json()
    assert (stats["open"], stats["resolved"]) == (1, 0)
    assert [(c["cause"], c["open"]) for c in stats["by_cause"]] == [("stock_rejected", 1)]


async def test_a_degraded_credit_check_opens_an_advisory_exception_and_the_order_goes_on(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id = await place(api)
    async with db.uow() as uow:
        repo = OrderRepository(uow.session)
        order = await repo.get_for_update(uuid.UUID(order_id))
        assert order is not None
        now = datetime.now(UTC)
        order.start_credit_check(now)
        order.credit_check_degraded("timeout", now)
        await publish_transitions(uow, order)
        await repo.save(order)
        await uow.commit()

    [item] = await open_exceptions(api)
    assert (item["cause"], item["order_state"]) == ("credit_degraded", "paid")
    r = await api.post(
        f"/exceptions/{item['id']}/resolve", json={"action": "release"}, headers=OPERATOR
    )
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["order_state"]) == ("resolved", "paid")


# -- the scheduler -----------------------------------------------------------------------


async def test_a_held_order_is_warned_once_then_breached_once_and_queued(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id = await place(api)
    await reject(db, order_id)

    assert await scheduler_at(db, later(ALLOWANCE_S * 0.5)).run_once() == 0
    assert await scheduler_at(db, later(ALLOWANCE_S * 0.85)).run_once() == 1
    assert await scheduler_at(db, later(ALLOWANCE_S * 0.9)).run_once() == 0
    assert await scheduler_at(db, later(ALLOWANCE_S + 5)).run_once() == 1
    assert await scheduler_at(db, later(ALLOWANCE_S * 5)).run_once() == 0

    at_risk = await events(db, "SlaAtRisk", order_id)
    breached = await events(db, "SlaBreached", order_id)
    assert len(at_risk) == 1 and len(breached) == 1
    assert (breached[0]["stage"], breached[0]["order_class"], breached[0]["channel"]) == (
        "review",
        "normal",
        "web",
    )
    causes = sorted(i["cause"] for i in await open_exceptions(api))
    assert causes == ["sla_breached", "stock_rejected"]


async def test_an_order_confirmed_in_time_is_never_alerted(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id = await place(api)
    await reserve(db, order_id)
    assert (await api.get(f"/orders/{order_id}")).json()["state"] == "routed"

    assert await scheduler_at(db, later(ALLOWANCE_S * 10)).run_once() == 0
    assert await events(db, "SlaAtRisk") == [] and await events(db, "SlaBreached") == []
    assert (await api.get("/sla/open")).json()["total"] == 0


async def test_concurrent_schedulers_send_each_breach_exactly_once(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_ids = [await place(api) for _ in range(12)]
    when = later(ALLOWANCE_S * 2)
    sent = await asyncio.gather(
        *(scheduler_at(db, when, batch_size=3).run_once() for _ in range(4))
    )
    assert sum(sent) == 12
    breached = await events(db, "SlaBreached")
    assert sorted(e["order_id"] for e in breached) == sorted(order_ids)
    assert await events(db, "SlaAtRisk") == []  # past the deadline only the breach is sent


async def test_an_urgent_order_uses_the_default_thirty_minutes(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id = await place(api, channel="app", priority="urgent")
    page = (await api.get("/sla/open")).json()
    [item] = page["items"]
    assert (item["order_id"], item["order_class"], item["stage"]) == (order_id, "urgent", "review")
    started = datetime.fromisoformat(item["started_at"])
    assert datetime.fromisoformat(item["deadline"]) - started == timedelta(minutes=30)
    assert await scheduler_at(db, started + timedelta(minutes=29)).run_once() == 1  # at risk
    assert await events(db, "SlaBreached") == []
    [clock] = (await api.get(f"/orders/{order_id}")).json()["sla"]
    assert (clock["stage"], clock["deadline_at"], clock["ended_at"]) == (
        "review",
        item["deadline"],
        None,
    )
    assert clock["at_risk_sent_at"] is not None and clock["breached_sent_at"] is None


async def test_cancelling_an_order_stops_its_clock_and_closes_its_exceptions(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id = await place(api)
    await reject(db, order_id)
    r = await api.post(
        f"/orders/{order_id}/cancel", json={"reason": "out of stock"}, headers=OPERATOR
    )
    assert r.status_code == 200, r.text
    assert [c["ended_state"] for c in r.json()["sla"]] == ["cancelled"]
    assert await open_exceptions(api) == []
    [resolved] = await events(db, "OrderExceptionResolved", order_id)
    assert (resolved["cause"], resolved["action"], resolved["actor"]) == (
        "stock_rejected",
        "cancel",
        "alice",
    )
    assert await scheduler_at(db, later(ALLOWANCE_S * 10)).run_once() == 0
    assert (await api.get("/sla/open")).json()["total"] == 0


# -- the board's list --------------------------------------------------------------------


async def test_open_clocks_are_listed_most_urgent_first_and_paged(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    late = await place(api)  # web: 100 s
    await place(api, channel="app")  # default: 2 h
    urgent = await place(api, channel="app", priority="urgent")  # default: 30 min
    done = await place(api)
    await reserve(db, done)

    page = (await api.get("/sla/open", params={"limit": 2})).json()
    assert page["total"] == 3 and page["limit"] == 2
    assert [i["order_id"] for i in page["items"]] == [late, urgent]
    assert page["items"][0]["state"] == "paid"
    assert 0 < page["items"][0]["seconds_left"] <= ALLOWANCE_S
    rest = (await api.get("/sla/open", params={"limit": 2, "offset": 2})).json()
    assert len(rest["items"]) == 1 and rest["items"][0]["order_class"] == "normal"
    only_web = (await api.get("/sla/open", params={"channel": "web"})).json()
    assert [i["order_id"] for i in only_web["items"]] == [late]
    assert_problem(await api.get("/sla/open", params={"stage": "nope"}), 422, "stage")
    assert_problem(await api.get("/sla/open", params={"limit": 0}), 422, "limit")


# -- resolving exceptions ----------------------------------------------------------------


async def held_exception(api: httpx.AsyncClient, db: MigratedDatabase) -> tuple[str, str]:
    order_id = await place(api)
    await reject(db, order_id)
    [item] = await open_exceptions(api, cause="stock_rejected")
    return order_id, str(item["id"])


async def test_retry_puts_the_order_back_to_paid_and_asks_for_stock_again(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id, exception_id = await held_exception(api, db)
    r = await api.post(
        f"/exceptions/{exception_id}/resolve",
        json={"action": "retry", "note": "stock arrived"},
        headers=OPERATOR,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["state"], body["action"], body["resolved_by"], body["note"]) == (
        "resolved",
        "retry",
        "alice",
        "stock arrived",
    )
    order = (await api.get(f"/orders/{order_id}")).json()
    assert order["state"] == "paid"
    assert order["history"][-1]["actor"] == "alice"
    assert len(await events(db, "OrderPaid", order_id)) == 2
    [resolved] = await events(db, "OrderExceptionResolved", order_id)
    assert (resolved["action"], resolved["actor"]) == ("retry", "alice")

    again = await api.post(
        f"/exceptions/{exception_id}/resolve", json={"action": "retry"}, headers=OPERATOR
    )
    assert_problem(again, 409)
    await reserve(db, order_id)  # the retried reservation succeeds: confirmed, routed
    assert (await api.get(f"/orders/{order_id}")).json()["state"] == "routed"
    stats = (await api.get("/exceptions/stats")).json()
    assert (stats["open"], stats["resolved"]) == (0, 1)
    listed = (await api.get("/exceptions", params={"state": "resolved"})).json()
    assert [i["id"] for i in listed["items"]] == [exception_id]


async def test_release_of_an_order_still_held_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id, exception_id = await held_exception(api, db)
    r = await api.post(
        f"/exceptions/{exception_id}/resolve", json={"action": "release"}, headers=OPERATOR
    )
    assert_problem(r, 409)
    assert (await api.get(f"/orders/{order_id}")).json()["state"] == "exception"
    assert len(await open_exceptions(api)) == 1
    assert await events(db, "OrderExceptionResolved") == []


async def test_cancel_cancels_the_order_and_closes_all_its_exceptions(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    order_id, exception_id = await held_exception(api, db)
    assert await scheduler_at(db, later(ALLOWANCE_S * 2)).run_once() == 1  # + sla_breached
    assert len(await open_exceptions(api)) == 2

    r = await api.post(
        f"/exceptions/{exception_id}/resolve",
        json={"action": "cancel", "note": "customer gave up"},
        headers=OPERATOR,
    )
    assert r.status_code == 200, r.text
    assert r.json()["order_state"] == "cancelled"
    order = (await api.get(f"/orders/{order_id}")).json()
    assert order["state"] == "cancelled" and order["cancelled_at"] is not None
    assert len(await events(db, "OrderCancelled", order_id)) == 1
    assert await open_exceptions(api) == []
    resolved = await events(db, "OrderExceptionResolved", order_id)
    assert sorted((e["cause"], e["action"], e["actor"]) for e in resolved) == [
        ("sla_breached", "cancel", "alice"),
        ("stock_rejected", "cancel", "alice"),
    ]


async def test_resolving_needs_an_operator_a_known_id_and_a_valid_action(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    _, exception_id = await held_exception(api, db)
    url = f"/exceptions/{exception_id}/resolve"
    assert_problem(await api.post(url, json={"action": "retry"}), 401, "X-Operator")
    assert_problem(await api.post(url, json={"action": "fix"}, headers=OPERATOR), 422, "action")
    assert_problem(
        await api.post(url, json={"action": "retry", "x": 1}, headers=OPERATOR), 422, "x"
    )
    unknown = f"/exceptions/{uuid.uuid4()}/resolve"
    assert_problem(await api.post(unknown, json={"action": "retry"}, headers=OPERATOR), 404)
    assert_problem(await api.get(f"/exceptions/{uuid.uuid4()}"), 404)
    assert_problem(await api.get("/exceptions", params={"cause": "bogus"}), 422, "cause")
    assert_problem(await api.get("/exceptions", params={"state": "closed"}), 422, "state")
    assert len(await open_exceptions(api)) == 1


# -- the report --------------------------------------------------------------------------

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


async def seed_history(
    db: MigratedDatabase, channel: str, priority: str, review_seconds: list[float]
) -> None:
    """Orders whose received -> paid -> confirmed times are chosen, with review clocks."""
    async with db.session_factory() as session, session.begin():
        for n, seconds in enumerate(review_seconds):
            order_id = uuid.uuid4()
            start = T0 + timedelta(minutes=n)
            await session.execute(
                insert(orders).values(
                    id=order_id,
                    channel=channel,
                    channel_order_id=f"R-{order_id.hex[:8]}",
                    state="confirmed",
                    currency="CNY",
                    total=1,
                    priority=priority,
                    customer={},
                    shipping_address={},
                    created_at=start,
                    updated_at=start,
                )
            )
            steps = [
                (None, "received", start),
                ("received", "paid", start + timedelta(seconds=seconds / 2)),
                ("paid", "confirmed", start + timedelta(seconds=seconds)),
            ]
            await session.execute(
                insert(order_transitions),
                [
                    {"order_id": order_id, "from_state": f, "to_state": t, "actor": "s", "at": at}
                    for f, t, at in steps
                ],
            )
            await session.execute(
                insert(order_sla).values(
                    order_id=order_id,
                    stage="review",
                    channel=channel,
                    order_class=priority,
                    started_at=start,
                    deadline_at=start + timedelta(seconds=ALLOWANCE_S),
                    at_risk_at=start + timedelta(seconds=ALLOWANCE_S * 0.8),
                    ended_at=start + timedelta(seconds=seconds),
                    ended_state="confirmed",
                )
            )


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, as ``percentile_cont`` computes it."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def test_the_report_gives_time_in_stage_percentiles_and_breach_rate(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    web = [10.0, 20.0, 30.0, 40.0, 150.0]  # one of five past the 100 s deadline
    app = [60.0, 120.0]
    await seed_history(db, "web", "normal", web)
    await seed_history(db, "app", "urgent", app)

    window = {
        "from": (T0 - timedelta(hours=1)).isoformat(),
        "to": (T0 + timedelta(hours=1)).isoformat(),
    }
    r = await api.get("/reports/sla", params=window)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"from", "to", "stages"}
    rows = {(s["kind"], s["stage"], s["channel"], s["order_class"]): s for s in body["stages"]}

    review_web = rows[("sla", "review", "web", "normal")]
    assert review_web["count"] == 5
    assert review_web["mean_s"] == pytest.approx(statistics.mean(web))
    assert review_web["p50_s"] == pytest.approx(percentile(web, 0.5))
    assert review_web["p95_s"] == pytest.approx(percentile(web, 0.95))
    assert (review_web["breached"], review_web["breach_rate"]) == (1, 0.2)
    review_all = rows[("sla", "review", None, None)]
    assert (review_all["count"], review_all["breached"]) == (7, 2)
    assert review_all["breach_rate"] == pytest.approx(2 / 7, abs=1e-4)

    received_web = rows[("state", "received", "web", "normal")]
    assert received_web["mean_s"] == pytest.approx(statistics.mean(s / 2 for s in web))
    assert received_web["breach_rate"] is None
    assert ("state", "confirmed", "web", "normal") not in rows  # still there: no time yet

    outside = {
        "from": (T0 + timedelta(hours=2)).isoformat(),
        "to": (T0 + timedelta(hours=3)).isoformat(),
    }
    assert (await api.get("/reports/sla", params=outside)).json()["stages"] == []


async def test_the_report_refuses_a_bad_window(api: httpx.AsyncClient) -> None:
    assert_problem(
        await api.get("/reports/sla", params={"from": T0.isoformat(), "to": T0.isoformat()}),
        422,
        "from",
    )
    assert_problem(
        await api.get("/reports/sla", params={"from": "2026-11-01T00:00:00"}), 422, "from"
    )
    assert_problem(await api.get("/reports/sla", params={"to": "yesterday"}), 422, "to")
    # Found by the fuzzer: a window end too early for the default 24 h before it.
    assert_problem(await api.get("/reports/sla", params={"to": "0001-01-01T09:19:17Z"}), 422, "to")
    assert_problem(
        await api.get("/reports/sla", params={"from": "0001-01-01T00:00:00+05:00"}), 422, "from"
    )


async def test_one_clock_that_fails_does_not_stop_the_others_alerts(
    api: httpx.AsyncClient, db: MigratedDatabase
) -> None:
    poisoned = await place(api)  # the most pressing: tried first
    others = [await place(api) for _ in range(2)]
    async with db.engine.begin() as conn:
        # Any write of its clock fails from now on.
        await conn.execute(
            text(
                "ALTER TABLE order_sla ADD CONSTRAINT test_poison"
                f" CHECK (order_id <> '{uuid.UUID(poisoned)}') NOT VALID"
            )
        )
    scheduler = scheduler_at(db, later(ALLOWANCE_S * 2))
    try:
        assert await scheduler.run_once() == 2
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE order_sla DROP CONSTRAINT test_poison"))
    assert scheduler.failures == 1
    breached = await events(db, "SlaBreached")
    assert sorted(e["order_id"] for e in breached) == sorted(others)
    assert sorted(i["order_id"] for i in await open_exceptions(api)) == sorted(others)
    # Its alert was not lost: the next run sends it.
    assert await scheduler_at(db, later(ALLOWANCE_S * 2)).run_once() == 1
    assert len(await events(db, "SlaBreached", poisoned)) == 1
