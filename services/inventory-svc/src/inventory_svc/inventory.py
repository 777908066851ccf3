"""The inventory use cases, in one unit of work each: what the handlers, the routes and
the periodic jobs all call.

Every stock change goes through here so that, in the same transaction, it writes its
ledger row (the repository does), emits ``StockLevelChanged``, keeps the channel caps in
units current, raises/clears the safety-stock alarm (pausing/resuming channels) and, for
class A SKUs, publishes the channels' available-to-sell.

Lock order (to stay deadlock-free): reservations rows, then stock rows in (sku,
warehouse) order, then channel counters in (sku, channel) order, then buyers' counts
(caps per customer) in (sku, buyer) order, then policy rows.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from inventory_svc.adapters.stock_repository import Change, StockLevel, StockRepository
from inventory_svc.domain.allocation import LineRejection, LineRequest, plan_allocation
from inventory_svc.domain.policy import (
    AbcClass,
    ChannelCap,
    ChannelUsage,
    available_to_sell,
    cap_units,
    channel_verdict,
    classify_abc,
    customer_left,
    effective_abc,
    safety_transition,
    within_customer_cap,
)
from inventory_svc.metrics import count_rejections
from oms_contracts.events import (
    ChannelSalesPaused,
    ChannelSalesResumed,
    ChannelStockLevel,
    OrderPaid,
    RejectedLine,
    ReservedLine,
    StockLevelChanged,
    StockLow,
    StockRejected,
    StockReleased,
    StockReserved,
)
from oms_messaging import UnitOfWork

log = logging.getLogger(__name__)

SYSTEM = "system:inventory-svc"
#: How often a plan that lost a race against a concurrent reservation is re-planned.
MAX_REPLANS = 3
#: ABC classes look at this much sales history.
ABC_WINDOW = timedelta(days=90)


class Refused(Exception):
    """A requested change would break a stock rule; nothing was changed."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class Policy:
    sku: str
    safety_stock: int = 0
    channel_caps: dict[str, ChannelCap] | None = None
    pause_channels: tuple[str, ...] = ()
    abc_override: AbcClass | None = None
    abc_class: AbcClass = "C"
    low: bool = False
    #: Units one buyer may hold or have bought (flash sales); None: no cap.
    max_per_customer: int | None = None

    @property
    def caps(self) -> dict[str, ChannelCap]:
        return self.channel_caps or {}

    @property
    def abc(self) -> AbcClass:
        return effective_abc(self.abc_class, self.abc_override)

    @classmethod
    def from_row(cls, sku: str, row: dict[str, Any] | None) -> Policy:
        if row is None:
            return cls(sku)
        return cls(
            sku=sku,
            safety_stock=row["safety_stock"],
            channel_caps={
                ch: ChannelCap.from_json(raw) for ch, raw in (row["channel_caps"] or {}).items()
            },
            pause_channels=tuple(row["pause_channels"] or ()),
            abc_override=row["abc_override"],
            abc_class=row["abc_class"],
            low=row["low"],
            max_per_customer=row.get("max_per_customer"),
        )


class Inventory:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self.repo = StockRepository(uow.session)

    # -- operator changes ------------------------------------------------------------

    async def _check_sku_and_warehouse(self, sku: str, *warehouses_: tuple[str, str]) -> None:
        if await self.repo.get_sku(sku) is None:
            raise Refused(422, f"unknown SKU {sku}", "sku")
        for field, code in warehouses_:
            if not await self.repo.warehouse_exists(code):
                raise Refused(422, f"unknown warehouse {code}", field)

    async def receive(self, sku: str, warehouse: str, qty: int, change: Change) -> None:
        await self._check_sku_and_warehouse(sku, ("warehouse", warehouse))
        level = await self.repo.receive(sku, warehouse, qty, change)
        await self._changed([level], on_hand_changed=True)

    async def adjust(self, sku: str, warehouse: str, delta: int, change: Change) -> None:
        await self._check_sku_and_warehouse(sku, ("warehouse", warehouse))
        if delta == 0:
            raise Refused(422, "an adjustment must change something", "delta")
        level = await self.repo.adjust(sku, warehouse, delta, change)
        if level is None:
            current = await self.repo.level(sku, warehouse)
            on_hand, reserved = (current.on_hand, current.reserved) if current else (0, 0)
            raise Refused(
                409,
                f"on hand {on_hand} {delta:+d} would fall below zero or below the "
                f"{reserved} reserved units",
                "delta",
            )
        await self._changed([level], on_hand_changed=True)

    async def transfer(self, sku: str, source: str, target: str, qty: int, change: Change) -> None:
        await self._check_sku_and_warehouse(sku, ("from", source), ("to", target))
        if source == target:
            raise Refused(422, "a transfer goes between two warehouses", "to")
        levels: list[StockLevel] = []
        # Both rows locked in warehouse order, like every other multi-row change.
        for wh in sorted((source, target)):
            if wh == source:
                level = await self.repo.adjust(sku, source, -qty, change)
                if level is None:
                    current = await self.repo.level(sku, source)
                    free = current.available if current else 0
                    raise Refused(409, f"only {free} units free to move from {source}", "qty")
            else:
                level = await self.repo.receive(sku, target, qty, change)
            levels.append(level)
        await self._changed(levels, on_hand_changed=True)

    async def put_policy(self, sku: str, values: dict[str, Any]) -> Policy:
        if await self.repo.get_sku(sku) is None:
            raise Refused(404, f"unknown SKU {sku}")
        caps: dict[str, ChannelCap] = values["channel_caps"]
        channels = sorted(set(caps) | set(values["pause_channels"]))
        await self.repo.ensure_counters([(sku, ch) for ch in channels])
        await self.repo.lock_counters(sku)
        row = await self.repo.put_policy(
            sku,
            {
                "safety_stock": values["safety_stock"],
                "channel_caps": {ch: cap.to_json() for ch, cap in caps.items()},
                "pause_channels": list(values["pause_channels"]),
                "abc_override": values["abc_override"],
                "max_per_customer": values.get("max_per_customer"),
            },
        )
        policy = Policy.from_row(sku, row)
        await self._refresh_caps(policy)
        now = datetime.now(UTC)
        await self._check_safety(policy, now)
        policy = Policy.from_row(sku, await self.repo.get_policy(sku))
        await self._sync_pauses(policy, now)
        if policy.abc == "A":
            await self.sync_channels(sku, now)
        return policy

    async def policy(self, sku: str) -> Policy:
        return Policy.from_row(sku, await self.repo.get_policy(sku))

    # -- the order life cycle ----------------------------------------------------------

    async def reserve_order(self, event: OrderPaid, ttl: timedelta) -> None:
        """All lines or none, within stock, the channel's caps and pauses, and the SKUs'
        caps per customer.

        A SKU's cap per customer counts by the order's ``buyer`` (an opaque key); an order
        without one (from producers older than the field) is not capped per customer, as
        there is nobody to count it against. Units are counted on reservation, given back
        on release (cancel, expiry) and stay counted once shipped.
        """
        repo = self.repo
        now = datetime.now(UTC)
        existing = await repo.reservations_of(event.order_id)
        kept = [r for r in existing if r["state"] != "released"]
        if kept:
            # A repeated request (a new OrderPaid for the same order): answer the same.
            await self._uow.emit(
                StockReserved(
                    order_id=event.order_id,
                    lines=[_reserved_line(r) for r in kept],
                    reserved_at=now,
                )
            )
            return
        if existing:
            # Everything was given back (an expired hold, an operator's release) and the
            # order asks again: it reserves afresh (the ledger keeps the history).
            await repo.forget_released(event.order_id)

        lines = [
            LineRequest(line.line_no, line.sku, line.qty, line.warehouse) for line in event.lines
        ]
        prices = {line.line_no: line.unit_price for line in event.lines}
        sku_set = {line.sku for line in lines}
        known = await repo.known_skus(sku_set)
        needed: dict[str, int] = defaultdict(int)
        for line in lines:
            needed[line.sku] += line.qty
        change = Change(
            kind="reservation", reason="order paid", operator=SYSTEM, order_id=event.order_id
        )
        rejections = [
            LineRejection(ln.line_no, ln.sku, ln.qty, "unknown_sku")
            for ln in lines
            if ln.sku not in known
        ]
        if not rejections:
            rejections = channel_rejections(
                lines, needed, await repo.usage(sku_set, event.channel), event.channel
            )
        caps = await self._customer_caps(sku_set) if event.buyer else {}
        if not rejections and caps:
            assert event.buyer is not None
            held = await repo.buyer_held(set(caps), event.buyer)
            rejections = _customer_rejections(lines, needed, caps, held)
        attempt = 0
        while not rejections:
            attempt += 1
            if attempt > MAX_REPLANS:
                rejections = [
                    LineRejection(ln.line_no, ln.sku, ln.qty, "insufficient") for ln in lines
                ]
                break
            plan = plan_allocation(lines, await repo.availability(sku_set), known, event.warehouse)
            if not plan.accepted:
                rejections = plan.rejections
                break
            savepoint = await self._uow.session.begin_nested()
            levels: list[StockLevel] = []
            for allocation in sorted(plan.allocations, key=lambda a: (a.sku, a.warehouse)):
                level = await repo.try_reserve(allocation, change)
                if level is None:
                    break
                levels.append(level)
            else:
                refused = await self._take_allowances(event, needed, caps)
                if refused is not None:
                    await savepoint.rollback()
                    rejections = await self._allowance_rejections(
                        refused, event, lines, needed, caps
                    )
                    continue
                for allocation in plan.allocations:
                    await repo.add_reservation(
                        event.order_id,
                        event.channel,
                        allocation,
                        now + ttl,
                        prices.get(allocation.line_no),
                        buyer=event.buyer if allocation.sku in caps else None,
                    )
                await savepoint.commit()
                await self._uow.emit(
                    StockReserved(
                        order_id=event.order_id,
                        lines=[
                            ReservedLine(
                                line_no=a.line_no, sku=a.sku, qty=a.qty, warehouse=a.warehouse
                            )
                            for a in plan.allocations
                        ],
                        reserved_at=now,
                    )
                )
                await self._changed(levels, on_hand_changed=False, now=now)
                return
            await savepoint.rollback()  # lost a stock race: re-plan on fresh numbers

        await self._uow.emit(stock_rejected(event.order_id, rejections, now))
        reasons = Tally[str](r.reason for r in rejections)
        self._uow.after_commit(lambda: count_rejections(reasons))

    async def _customer_caps(self, sku_set: set[str]) -> dict[str, int]:
        """SKU -> its cap per customer, for the SKUs of ``sku_set`` that have one."""
        policies = await self.repo.policies(sku_set)
        return {
            sku: row["max_per_customer"]
            for sku, row in policies.items()
            if row.get("max_per_customer") is not None
        }

    async def _take_allowances(
        self, event: OrderPaid, needed: dict[str, int], caps: dict[str, int]
    ) -> tuple[Literal["channel", "customer"], str] | None:
        """Count the order against its channel's caps, then against its buyer's caps per
        customer (each in SKU order: the lock order); what refused first, if anything.

        Both are guarded statements deciding on the committed rows, so concurrent orders
        cannot pass either cap; the caller rolls back whatever was counted on a refusal.
        """
        repo = self.repo
        await repo.ensure_counters([(sku, event.channel) for sku in needed])
        for sku in sorted(needed):
            if not await repo.try_take(sku, event.channel, needed[sku]):
                return "channel", sku
        if event.buyer is not None:
            for sku in sorted(caps):
                if sku in needed and not await repo.try_count_buyer(
                    sku, event.buyer, needed[sku], caps[sku]
                ):
                    return "customer", sku
        return None

    async def _allowance_rejections(
        self,
        refused: tuple[Literal["channel", "customer"], str],
        event: OrderPaid,
        lines: list[LineRequest],
        needed: dict[str, int],
        caps: dict[str, int],
    ) -> list[LineRejection]:
        """Why the order lost a race for a cap, on fresh numbers (after the rollback)."""
        kind, sku = refused
        if kind == "channel":
            usage = await self.repo.usage({ln.sku for ln in lines}, event.channel)
            rejections = channel_rejections(lines, needed, usage, event.channel)
            if rejections:
                return rejections
            # The cap was lowered and raised again meanwhile.
            return [
                LineRejection(ln.line_no, ln.sku, ln.qty, "channel_cap", 0)
                for ln in lines
                if ln.sku == sku
            ]
        assert event.buyer is not None
        held = await self.repo.buyer_held(set(caps), event.buyer)
        rejections = _customer_rejections(lines, needed, caps, held)
        if rejections:
            return rejections
        # A concurrent order of the buyer was released meanwhile: refused all the same.
        left = customer_left(caps[sku], held.get(sku, 0))
        return [
            LineRejection(ln.line_no, ln.sku, ln.qty, "customer_limit", left)
            for ln in lines
            if ln.sku == sku
        ]

    async def release_order(
        self,
        order_id: uuid.UUID,
        reason: Literal["cancelled", "operator"],
        operator: str = SYSTEM,
    ) -> bool:
        """Give the order's open reservations back, confirmed or not; False if there were
        none (no-op). Expiry is not a reason here: see :meth:`release_expired_hold`."""
        rows = await self.repo.close_reservations(order_id, "released")
        return await self._give_back(order_id, rows, reason, operator)

    async def release_expired_hold(self, order_id: uuid.UUID, now: datetime) -> bool:
        """Give back the order's holds that expired by ``now`` (the sweeper); False when
        none did any more.

        Expiry is checked again on the rows released, not only when the sweeper picked
        the order: a confirmation, a cancel or a shipment committed in between wins, so a
        confirmed order never loses its stock to a sweep that was already under way.
        """
        rows = await self.repo.close_reservations(order_id, "released", expired_by=now)
        return await self._give_back(order_id, rows, "expired", SYSTEM)

    async def _give_back(
        self,
        order_id: uuid.UUID,
        rows: list[dict[str, Any]],
        reason: Literal["cancelled", "expired", "operator"],
        operator: str,
    ) -> bool:
        """The stock, channel units and buyers' allowances of the reservation lines just
        closed go back, and ``StockReleased`` says so; False when nothing was closed."""
        if not rows:
            return False
        change = Change(kind="release", reason=reason, operator=operator, order_id=order_id)
        levels = [await self.repo.release(r["sku"], r["warehouse"], r["qty"], change) for r in rows]
        for (sku, channel), qty in sorted(_per_channel(rows).items()):
            await self.repo.give_back(sku, channel, qty, shipped=False)
        for (sku, buyer), qty in sorted(_per_buyer(rows).items()):
            await self.repo.uncount_buyer(sku, buyer, qty)
        now = datetime.now(UTC)
        await self._uow.emit(
            StockReleased(
                order_id=order_id,
                lines=[_reserved_line(r) for r in sorted(rows, key=lambda r: r["line_no"])],
                reason=reason,
                released_at=now,
            )
        )
        await self._changed(levels, on_hand_changed=False, now=now)
        return True

    async def hold_for_confirmed_order(self, order_id: uuid.UUID) -> bool:
        """The order is confirmed: its stock is held until it ships or is cancelled, never
        released by the expiry sweeper (only unconfirmed holds expire). False when it
        holds nothing (released meanwhile, or never reserved)."""
        return await self.repo.hold_until_shipped(order_id) > 0

    async def ship_order(self, order_id: uuid.UUID, line_nos: set[int] | None) -> bool:
        """Shipped lines leave on hand and reserved; the reservations are closed."""
        rows = await self.repo.close_reservations(order_id, "shipped", line_nos)
        if not rows:
            return False
        change = Change(kind="shipment", reason="order shipped", operator=SYSTEM, order_id=order_id)
        levels = [await self.repo.ship(r["sku"], r["warehouse"], r["qty"], change) for r in rows]
        for (sku, channel), qty in sorted(_per_channel(rows).items()):
            await self.repo.give_back(sku, channel, qty, shipped=True)
        # The cap base (on hand + shipped) is unchanged by a shipment: no cap refresh.
        await self._changed(levels, on_hand_changed=False)
        return True

    # -- periodic work -------------------------------------------------------------------

    async def expired_orders(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Orders whose unconfirmed hold expired by ``now``: the sweeper's work list."""
        return await self.repo.expired_orders(now, limit)

    async def recompute_abc(self, now: datetime) -> dict[str, AbcClass]:
        """Classes from the last 90 days of sales value; overrides still win."""
        sales = await self.repo.sales_value_since(now - ABC_WINDOW)
        classes = classify_abc(sales, await self.repo.all_skus())
        await self.repo.set_abc_classes(dict(classes))
        return classes

    async def sync_channels(self, sku: str, now: datetime | None = None) -> int:
        """Publish every known channel's available-to-sell of ``sku``."""
        now = now or datetime.now(UTC)
        policy = await self.policy(sku)
        atp = await self.channel_availability(sku, policy)
        for channel, value in sorted(atp.items()):
            await self._uow.emit(
                ChannelStockLevel(
                    sku=sku,
                    channel=channel,
                    available_to_sell=value,
                    abc_class=policy.abc,
                    as_of=now,
                ),
                snapshot_of=f"ChannelStockLevel:{sku}:{channel}",
            )
        return len(atp)

    async def channel_availability(self, sku: str, policy: Policy | None = None) -> dict[str, int]:
        policy = policy or await self.policy(sku)
        usage = await self.repo.usage({sku})
        available = await self.repo.total_available(sku)
        channels = {ch for (_, ch) in usage} | set(policy.caps)
        return {
            ch: available_to_sell(available, usage.get((sku, ch), ChannelUsage()))
            for ch in sorted(channels)
        }

    async def channel_usage(self, sku: str) -> dict[str, ChannelUsage]:
        return {ch: u for (_, ch), u in (await self.repo.usage({sku})).items()}

    # -- what follows every change -------------------------------------------------------

    async def stock_changed(
        self, levels: Iterable[StockLevel], *, on_hand_changed: bool, now: datetime
    ) -> None:
        """What follows changed stock rows, once per row (a batch's final numbers):
        StockLevelChanged, channel caps in units, the safety-stock alarm, channel stock."""
        await self._changed(levels, on_hand_changed=on_hand_changed, now=now)

    async def _changed(
        self,
        levels: Iterable[StockLevel],
        *,
        on_hand_changed: bool,
        now: datetime | None = None,
    ) -> None:
        now = now or datetime.now(UTC)
        levels = list(levels)
        for level in levels:
            await self._uow.emit(
                StockLevelChanged(
                    sku=level.sku,
                    warehouse=level.warehouse,
                    on_hand=level.on_hand,
                    reserved=level.reserved,
                    available=level.available,
                    changed_at=now,
                ),
                snapshot_of=f"StockLevelChanged:{level.sku}:{level.warehouse}",
            )
        changed_skus = {level.sku for level in levels}
        # One read for all the SKUs (a consumer batch changes hundreds at once).
        rows = await self.repo.policies(changed_skus) if len(changed_skus) > 1 else None
        for sku in sorted(changed_skus):
            row = rows.get(sku) if rows is not None else await self.repo.get_policy(sku)
            if row is None:
                continue  # no policy: no caps, no safety stock, class C
            policy = Policy.from_row(sku, row)
            if on_hand_changed and policy.caps:
                await self._refresh_caps(policy)
            await self._check_safety(policy, now)
            if policy.abc == "A":
                await self.sync_channels(sku, now)

    async def _refresh_caps(self, policy: Policy) -> None:
        """Recompute the channels' caps in units from the total on hand (+ shipped)."""
        sku = policy.sku
        await self.repo.ensure_counters([(sku, ch) for ch in policy.caps])
        counters = await self.repo.lock_counters(sku)
        base = await self.repo.on_hand_total(sku) + sum(u.shipped for u in counters.values())
        for channel, usage in counters.items():
            units = cap_units(policy.caps.get(channel), base)
            if units != usage.cap_units:
                await self.repo.set_counter(sku, channel, cap_units=units)

    async def _check_safety(self, policy: Policy, now: datetime) -> None:
        available = await self.repo.total_available(policy.sku)
        transition = safety_transition(policy.low, available, policy.safety_stock)
        if transition is None or not await self.repo.flip_low(policy.sku, transition == "low"):
            return  # no crossing, or a concurrent change reported it already
        low = transition == "low"
        if low:
            await self._uow.emit(
                StockLow(
                    sku=policy.sku,
                    available=available,
                    safety_stock=policy.safety_stock,
                    raised_at=now,
                )
            )
        log.info(
            "safety stock %s",
            "crossed below" if low else "restored",
            extra={"sku": policy.sku, "available": available, "safety": policy.safety_stock},
        )
        await self._sync_pauses(replace(policy, low=low), now)

    async def _sync_pauses(self, policy: Policy, now: datetime) -> None:
        """Paused channels are the policy's pause list while the SKU is low, none otherwise."""
        sku = policy.sku
        await self.repo.ensure_counters([(sku, ch) for ch in policy.pause_channels])
        usage = await self.repo.usage({sku})
        for (_, channel), current in sorted(usage.items()):
            wanted = policy.low and channel in policy.pause_channels
            if wanted == current.paused:
                continue
            await self.repo.set_counter(sku, channel, paused=wanted)
            reason = "available below safety stock" if wanted else "stock restored"
            if wanted:
                await self._uow.emit(
                    ChannelSalesPaused(sku=sku, channel=channel, reason=reason, paused_at=now)
                )
            else:
                await self._uow.emit(
                    ChannelSalesResumed(sku=sku, channel=channel, reason=reason, resumed_at=now)
                )


def _reserved_line(row: dict[str, Any]) -> ReservedLine:
    return ReservedLine(
        line_no=row["line_no"], sku=row["sku"], qty=row["qty"], warehouse=row["warehouse"]
    )


def _per_channel(rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        totals[(row["sku"], row["channel"])] += row["qty"]
    return totals


def _per_buyer(rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Units per (sku, buyer) of the rows that were counted against a buyer's cap."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        if row["buyer"] is not None:
            totals[(row["sku"], row["buyer"])] += row["qty"]
    return totals


def _customer_rejections(
    lines: list[LineRequest],
    needed: dict[str, int],
    caps: dict[str, int],
    held: dict[str, int],
) -> list[LineRejection]:
    """Lines of SKUs the buyer would take past their cap per customer (whole SKUs: the
    order's lines of one SKU count together); ``available`` is what the buyer has left."""
    return [
        LineRejection(
            line.line_no,
            line.sku,
            line.qty,
            "customer_limit",
            customer_left(caps[line.sku], held.get(line.sku, 0)),
        )
        for line in lines
        if line.sku in caps
        and not within_customer_cap(caps[line.sku], held.get(line.sku, 0), needed[line.sku])
    ]


def stock_rejected(
    order_id: uuid.UUID, rejections: list[LineRejection], now: datetime
) -> StockRejected:
    """The answer to a paid order that cannot be served, with the reason per line."""
    return StockRejected(
        order_id=order_id,
        lines=[
            RejectedLine(
                line_no=r.line_no, sku=r.sku, qty=r.qty, reason=r.reason, available=r.available
            )
            for r in rejections
        ],
        rejected_at=now,
    )


def channel_rejections(
    lines: list[LineRequest],
    needed: dict[str, int],
    usage: dict[tuple[str, str], ChannelUsage],
    channel: str,
) -> list[LineRejection]:
    """Lines the channel may not take now: paused, or over its cap (with its headroom)."""
    rejections = []
    for line in lines:
        current = usage.get((line.sku, channel), ChannelUsage())
        verdict = channel_verdict(current, needed[line.sku])
        if verdict == "channel_paused":
            rejections.append(LineRejection(line.line_no, line.sku, line.qty, verdict, 0))
        elif verdict == "channel_cap":
            rejections.append(
                LineRejection(line.line_no, line.sku, line.qty, verdict, current.headroom)
            )
    return rejections
