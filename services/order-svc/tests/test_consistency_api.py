"""``GET /consistency`` on a real database, with inventory-svc's ``GET /reservations``
answered by a stand-in: orders are read in one statement (whatever their number), every
page of inventory is read, the answer lists each disagreement; bad input is a 422 naming
the field, an unreadable inventory a 503, and the periodic job sets the gauge."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, insert

from oms_servicekit.http import create_app
from oms_servicekit.problems import PROBLEM_JSON
from oms_servicekit.testing import DatabaseOnlyRuntime, MigratedDatabase, TokenMint
from order_svc.adapters.inventory_client import InventoryClient
from order_svc.adapters.tables import order_lines, orders
from order_svc.api.consistency_routes import router
from order_svc.bootstrap import SERVICE
from order_svc.service_layer.consistency import ConsistencyCheck

LONG_AGO = datetime.now(UTC) - timedelta(hours=1)


class FakeInventory:
    """inventory-svc's ``GET /reservations``: ``held`` paged by order id."""

    def __init__(self) -> None:
        self.held: dict[uuid.UUID, list[dict[str, Any]]] = {}
        self.status = 200
        self.requests: list[httpx.Request] = []

    def hold(self, order_id: uuid.UUID, *lines: tuple[str, int, str]) -> None:
        self.held[order_id] = [
            {"line_no": n, "sku": sku, "qty": qty, "warehouse": wh}
            for n, (sku, qty, wh) in enumerate(lines, start=1)
        ]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"detail": "down"})
        assert request.url.path == "/reservations"
        assert request.url.params["status"] == "open"
        limit = int(request.url.params["limit"])
        after = request.url.params.get("cursor")
        ids = sorted(i for i in self.held if after is None or str(i) > after)
        page = ids[:limit]
        return httpx.Response(
            200,
            json={
                "items": [
                    {
                        "order_id": str(i),
                        "channel": "web",
                        "lines": self.held[i],
                        "reserved_at": LONG_AGO.isoformat(),
                        "changed_at": LONG_AGO.isoformat(),
                        "expires_at": (LONG_AGO + timedelta(days=1)).isoformat(),
                    }
                    for i in page
                ],
                "next_cursor": str(page[-1]) if len(ids) > limit else None,
            },
        )


@pytest.fixture
def inventory() -> FakeInventory:
    return FakeInventory()


def check_with(inventory: FakeInventory, page_size: int = 2) -> ConsistencyCheck:
    client = InventoryClient(
        "http://inventory", page_size=page_size, transport=httpx.MockTransport(inventory.handler)
    )
    return ConsistencyCheck(client, grace_s=30)


@pytest.fixture
async def api(db: MigratedDatabase, inventory: FakeInventory) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(db, producer=SERVICE),  # type: ignore[arg-type]
        routers=[router],
    )
    app.state.consistency = check_with(inventory)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://order-svc") as client:
        yield client


async def add_order(
    db: MigratedDatabase,
    state: str,
    *lines: tuple[str, int, str | None],
    changed_at: datetime = LONG_AGO,
) -> uuid.UUID:
    order_id = uuid.uuid4()
    async with db.uow() as uow:
        await uow.session.execute(
            insert(orders).values(
                id=order_id,
                channel="web",
                channel_order_id=f"W-{order_id.hex[:8]}",
                state=state,
                customer={},
                currency="CNY",
                total=Decimal("10"),
                priority="normal",
                shipping_address={},
                created_at=changed_at,
                updated_at=changed_at,
            )
        )
        await uow.session.execute(
            insert(order_lines),
            [
                {
                    "order_id": order_id,
                    "line_no": n,
                    "sku": sku,
                    "qty": qty,
                    "unit_price": Decimal("10"),
                    "warehouse": wh,
                }
                for n, (sku, qty, wh) in enumerate(lines, start=1)
            ],
        )
        await uow.commit()
    return order_id


async def test_agreeing_orders_and_reservations_answer_no_disagreement(
    db: MigratedDatabase, inventory: FakeInventory, api: httpx.AsyncClient
) -> None:
    for state in ("reserved", "confirmed", "routed", "picking", "exception"):
        inventory.hold(await add_order(db, state, ("TEA", 2, "WH-SH")), ("TEA", 2, "WH-SH"))
    await add_order(db, "cancelled", ("TEA", 1, None))
    await add_order(db, "exception", ("TEA", 1, None))  # held nothing where it stopped

    r = await api.get("/consistency")

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["disagreements"] == []
    assert (body["orders_checked"], body["reservations_checked"]) == (5, 5)
    assert len(inventory.requests) == 3  # pages of 2, 2 and 1


async def test_every_kind_of_disagreement_is_listed(
    db: MigratedDatabase, inventory: FakeInventory, api: httpx.AsyncClient
) -> None:
    closed = await add_order(db, "cancelled", ("TEA", 1, "WH-SH"))
    inventory.hold(closed, ("TEA", 1, "WH-SH"))
    unpaid = await add_order(db, "pending_payment", ("TEA", 1, None))
    inventory.hold(unpaid, ("TEA", 1, "WH-SH"))
    missing = await add_order(db, "confirmed", ("TEA", 1, "WH-SH"))
    mismatch = await add_order(db, "routed", ("TEA", 3, "WH-SH"))
    inventory.hold(mismatch, ("TEA", 2, "WH-SH"))
    stranger = uuid.uuid4()
    inventory.hold(stranger, ("TEA", 1, "WH-BJ"))
    in_flight = await add_order(db, "shipped", ("TEA", 1, "WH-SH"), changed_at=datetime.now(UTC))
    inventory.hold(in_flight, ("TEA", 1, "WH-SH"))

    r = await api.get("/consistency")

    assert r.status_code == 200, r.text
    found = {d["order_id"]: (d["state"], d["kind"]) for d in r.json()["disagreements"]}
    assert found == {
        str(closed): ("cancelled", "stock_held_for_closed_order"),
        str(unpaid): ("pending_payment", "stock_held_for_unpaid_order"),
        str(missing): ("confirmed", "no_reservation"),
        str(mismatch): ("routed", "reservation_mismatch"),
        str(stranger): (None, "unknown_order"),
    }
    # A grace period of 0 s takes the order shipped a moment ago too.
    r = await api.get("/consistency", params={"grace_s": 0})
    kinds = {d["order_id"]: d["kind"] for d in r.json()["disagreements"]}
    assert kinds[str(in_flight)] == "stock_held_for_closed_order"


async def test_orders_are_read_in_one_statement_whatever_their_number(
    db: MigratedDatabase, inventory: FakeInventory, api: httpx.AsyncClient
) -> None:
    for _ in range(30):
        inventory.hold(await add_order(db, "confirmed", ("TEA", 1, "WH-SH")), ("TEA", 1, "WH-SH"))
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM orders" in statement:
            statements.append(statement)

    engine = db.session_factory.kw["bind"].sync_engine
    listen: Callable[..., None] = event.listen
    listen(engine, "before_cursor_execute", count)
    try:
        r = await api.get("/consistency")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert r.status_code == 200, r.text
    assert r.json()["orders_checked"] == 30
    assert len(statements) == 1
    assert len(inventory.requests) == 15  # pages of 2


@pytest.mark.parametrize("grace", ["-1", "86401", "soon", "nan"])
async def test_a_bad_grace_period_is_a_422_naming_the_field(
    api: httpx.AsyncClient, grace: str
) -> None:
    r = await api.get("/consistency", params={"grace_s": grace})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert r.json()["field"] == "grace_s"


async def test_an_unreadable_inventory_is_a_503(
    inventory: FakeInventory, api: httpx.AsyncClient
) -> None:
    inventory.status = 500
    r = await api.get("/consistency")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert "inventory-svc" in r.json()["detail"]


async def test_the_periodic_check_sets_the_gauge_per_kind(
    db: MigratedDatabase, inventory: FakeInventory
) -> None:
    closed = await add_order(db, "delivered", ("TEA", 1, "WH-SH"))
    inventory.hold(closed, ("TEA", 1, "WH-SH"))
    check = check_with(inventory)
    runtime = DatabaseOnlyRuntime(db, producer=SERVICE)

    await check.run_and_record(runtime.uow, SERVICE)

    def gauge(kind: str) -> float | None:
        return REGISTRY.get_sample_value(
            "oms_consistency_disagreements", {"service": SERVICE, "kind": kind}
        )

    assert gauge("stock_held_for_closed_order") == 1
    assert gauge("no_reservation") == 0
    # Inventory down: the gauge keeps what the last successful check found.
    inventory.status = 503
    await check.run_and_record(runtime.uow, SERVICE)
    assert gauge("stock_held_for_closed_order") == 1


TOKENS = TokenMint("ops@example.com")


async def test_in_jwt_mode_the_check_needs_orders_read(
    db: MigratedDatabase, inventory: FakeInventory
) -> None:
    app = create_app(
        title=SERVICE,
        runtime=DatabaseOnlyRuntime(db, producer=SERVICE),  # type: ignore[arg-type]
        routers=[router],
        authenticator=TOKENS.authenticator(),
    )
    app.state.consistency = check_with(inventory)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://order-svc") as client:
        assert (await client.get("/consistency")).status_code == 401
        r = await client.get("/consistency", headers=TOKENS.bearer("orders:write"))
        assert r.status_code == 403, r.text
        r = await client.get("/consistency", headers=TOKENS.bearer("orders:read"))
        assert r.status_code == 200, r.text
