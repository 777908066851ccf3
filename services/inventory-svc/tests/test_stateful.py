"""Any sequence of stock operations keeps the stock rules, on a real database.

A hypothesis state machine drives :class:`Inventory` (what the consumers, routes and jobs
call) with receipts, reservations from capped channels, cancellations, shipments,
adjustments, expiries and policy changes, and after every step checks: available >= 0,
reserved <= on hand, the ledger sums to the stock rows, each channel's counters equal
its open reservations, and a channel never takes a unit beyond its cap.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, update

from inventory_svc.adapters.stock_repository import Change
from inventory_svc.adapters.tables import channel_allocations, ledger, reservations, stock
from inventory_svc.bootstrap import MIGRATIONS, SERVICE
from inventory_svc.domain.policy import ChannelCap
from inventory_svc.handlers import sweep_expired
from inventory_svc.inventory import Inventory, Refused
from oms_contracts.events import OrderLine, OrderPaid
from oms_servicekit.testing import MigratedDatabase, migrated_database

T = TypeVar("T")
SKUS = ("S1", "S2")
WAREHOUSES = ("WH-1", "WH-2")
CHANNELS = ("live", "tmall", "app")
TTL = timedelta(hours=1)


class Loop:
    """A private event loop and test database for the (synchronous) state machine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._cm = migrated_database(MIGRATIONS, "test_inventory_sm", producer=SERVICE)
        self.db: MigratedDatabase = self.run(self._cm.__aenter__())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self._cm.__aexit__(None, None, None))
        self.loop.close()


LOOP: Loop | None = None


class StockMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert LOOP is not None
        self.env = LOOP
        self.db = LOOP.db
        self.open: list[uuid.UUID] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.env.run(coro)

    async def _in_uow(self, action: Any) -> Any:
        async with self.db.uow() as uow:
            try:
                result = await action(Inventory(uow))
            except Refused:
                return None
            await uow.commit()
            return result

    @initialize()
    def setup(self) -> None:
        async def go(inv: Inventory) -> None:
            for wh in WAREHOUSES:
                await inv.repo.add_warehouse(
                    {"code": wh, "name": wh, "region": "R", "latitude": 0.0, "longitude": 0.0}
                )
            for sku in SKUS:
                await inv.repo.add_sku({"sku": sku, "name": sku})

        self.run(self.db.truncate())
        self.run(self._in_uow(go))

    @rule(sku=st.sampled_from(SKUS), wh=st.sampled_from(WAREHOUSES), qty=st.integers(1, 20))
    def receive(self, sku: str, wh: str, qty: int) -> None:
        self.run(
            self._in_uow(lambda inv: inv.receive(sku, wh, qty, Change("receipt", "t", "prop")))
        )

    @rule(sku=st.sampled_from(SKUS), wh=st.sampled_from(WAREHOUSES), delta=st.integers(-15, 15))
    def adjust(self, sku: str, wh: str, delta: int) -> None:
        self.run(
            self._in_uow(lambda inv: inv.adjust(sku, wh, delta, Change("adjustment", "t", "p")))
        )

    @rule(
        sku=st.sampled_from(SKUS),
        source=st.sampled_from(WAREHOUSES),
        qty=st.integers(1, 10),
    )
    def transfer(self, sku: str, source: str, qty: int) -> None:
        target = WAREHOUSES[1 - WAREHOUSES.index(source)]
        self.run(
            self._in_uow(
                lambda inv: inv.transfer(sku, source, target, qty, Change("transfer", "t", "p"))
            )
        )

    @rule(
        sku=st.sampled_from(SKUS),
        live=st.integers(0, 100),
        tmall=st.none() | st.integers(0, 30),
        safety=st.integers(0, 15),
    )
    def set_policy(self, sku: str, live: int, tmall: int | None, safety: int) -> None:
        caps = {"live": ChannelCap(percent=Decimal(live))}
        if tmall is not None:
            caps["tmall"] = ChannelCap(units=tmall)
        values = {
            "safety_stock": safety,
            "channel_caps": caps,
            "pause_channels": ["app"],
            "abc_override": None,
        }
        self.run(self._in_uow(lambda inv: inv.put_policy(sku, values)))

    @rule(
        channel=st.sampled_from(CHANNELS),
        lines=st.lists(
            st.tuples(
                st.sampled_from(SKUS), st.integers(1, 6), st.none() | st.sampled_from(WAREHOUSES)
            ),
            min_size=1,
            max_size=3,
        ),
    )
    def reserve(self, channel: str, lines: list[tuple[str, int, str | None]]) -> None:
        event = OrderPaid(
            order_id=uuid.uuid4(),
            channel=channel,
            lines=[
                OrderLine(line_no=i, sku=sku, qty=qty, unit_price=Decimal(3), warehouse=wh)
                for i, (sku, qty, wh) in enumerate(lines, start=1)
            ],
            currency="CNY",
            total=Decimal(1),
            paid_at=datetime.now(UTC),
        )
        before = self.run(self._usage())
        self.run(self._in_uow(lambda inv: inv.reserve_order(event, TTL)))
        after = self.run(self._usage())
        if self.run(self._reservation_count(event.order_id)):
            self.open.append(event.order_id)
            for (sku, ch), (used, cap, _) in after.items():
                if ch == channel and cap is not None and used > before.get((sku, ch), (0,))[0]:
                    assert used <= cap, f"{ch} took {sku} beyond its cap: {used} > {cap}"
        else:
            assert after == before

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data(), how=st.sampled_from(["cancel", "ship", "expire"]))
    def close(self, data: st.DataObject, how: str) -> None:
        order_id = data.draw(st.sampled_from(self.open))
        if how == "cancel":
            self.run(self._in_uow(lambda inv: inv.release_order(order_id, "cancelled")))
        elif how == "ship":
            self.run(self._in_uow(lambda inv: inv.ship_order(order_id, None)))
        else:
            self.run(self._expire(order_id))
        self.open.remove(order_id)  # closing it again must change nothing:
        before = self.run(self._snapshot())
        self.run(self._in_uow(lambda inv: inv.release_order(order_id, "cancelled")))
        self.run(self._in_uow(lambda inv: inv.ship_order(order_id, None)))
        assert self.run(self._snapshot()) == before

    @invariant()
    def stock_rules_hold(self) -> None:
        if not hasattr(self, "db"):
            return
        levels, sums, counters, open_per_channel = self.run(self._snapshot())
        for (sku, wh), (on_hand, reserved) in levels.items():
            assert 0 <= reserved <= on_hand, (sku, wh, on_hand, reserved)
        assert sums == levels
        assert {k: v for k, v in counters.items() if v} == open_per_channel

    # -- reading the database ------------------------------------------------------------

    async def _expire(self, order_id: uuid.UUID) -> None:
        async with self.db.session_factory() as s:
            await s.execute(
                update(reservations)
                .where(reservations.c.order_id == order_id)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            await s.commit()
        await sweep_expired(self.db.uow, 100)

    async def _reservation_count(self, order_id: uuid.UUID) -> int:
        async with self.db.session_factory() as s:
            return int(
                await s.scalar(select(func.count()).where(reservations.c.order_id == order_id)) or 0
            )

    async def _usage(self) -> dict[tuple[str, str], tuple[int, int | None, bool]]:
        async with self.db.session_factory() as s:
            rows = await s.execute(select(channel_allocations))
        return {(r.sku, r.channel): (r.reserved + r.shipped, r.cap_units, r.paused) for r in rows}

    async def _snapshot(self) -> tuple[Any, ...]:
        async with self.db.session_factory() as s:
            levels = {
                (r.sku, r.warehouse): (r.on_hand, r.reserved)
                for r in await s.execute(select(stock))
            }
            sums = {
                (r[0], r[1]): (int(r[2]), int(r[3]))
                for r in await s.execute(
                    select(
                        ledger.c.sku,
                        ledger.c.warehouse,
                        func.sum(ledger.c.delta_on_hand),
                        func.sum(ledger.c.delta_reserved),
                    ).group_by(ledger.c.sku, ledger.c.warehouse)
                )
            }
            counters = {
                (r.sku, r.channel): r.reserved for r in await s.execute(select(channel_allocations))
            }
            open_rows = await s.execute(
                select(reservations.c.sku, reservations.c.channel, func.sum(reservations.c.qty))
                .where(reservations.c.state == "reserved")
                .group_by(reservations.c.sku, reservations.c.channel)
            )
            open_per_channel = {(r[0], r[1]): int(r[2]) for r in open_rows}
        return levels, sums, counters, open_per_channel


def test_any_sequence_of_operations_keeps_the_stock_rules() -> None:
    global LOOP
    LOOP = Loop()
    try:
        run_state_machine_as_test(
            StockMachine,
            settings=settings(
                max_examples=10,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        LOOP.close()
        LOOP = None
