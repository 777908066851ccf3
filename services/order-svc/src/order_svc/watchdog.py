"""No order waits forever: the watchdog asks again, then hands the order to a person.

Two states wait on another service:

- ``paid`` with OrderPaid sent: inventory owes an answer (StockReserved or
  StockRejected). After ``stall_after_s`` without one the watchdog sends OrderPaid
  again. Inventory dedupes by the order: an order that already holds stock is answered
  StockReserved again, one without a reservation reserves once; and an answer for an
  order no longer in ``paid`` changes nothing here. A paid order that never asked
  (no rule routes it) waits on its own rules, not on a service, and is left alone.
- ``credit_check``: the bureau (through the credit worker) owes a result by the check's
  deadline plus the worker's slack. Past that the watchdog re-queues the check for the
  worker with a fresh budget; a stored answer not yet applied is never re-queued (that
  could trade a refusal for a second chance), it only counts.

Each re-send is counted per order and wait. After ``stall_max_resends`` of them, and one
more threshold without an answer, the order goes to the exception queue with cause
``stalled`` and its transitions are published (OrderStatusChanged, OrderExceptionRaised:
the notifier alerts). Orders in ``exception``, waiting for the buyer's payment, or in any
later state are not waiting on a service and are never touched.

Every order is judged again under its row lock and handled in its own unit of work; one
that fails is logged (its id only) and counted, and the run goes on. The job is
registered ``exclusive``: one replica at a time runs it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from oms_messaging import UnitOfWork
from order_svc.adapters.repository import OrderRepository
from order_svc.adapters.watchdog_store import Wait, WatchdogStore
from order_svc.credit import ANSWERED, requeue_check
from order_svc.domain.order import OrderState
from order_svc.publishing import order_paid_event, publish_transitions
from order_svc.settings import OrderSettings

log = logging.getLogger(__name__)

S = OrderState

#: The states in which an order waits on another service.
WATCHED: frozenset[OrderState] = frozenset({S.PAID, S.CREDIT_CHECK})


@dataclass(frozen=True)
class WatchdogPolicy:
    """How patient the watchdog is; every number is a setting of order-svc."""

    stall_after_s: float = 120.0
    max_resends: int = 3
    batch: int = 200
    #: The credit check's budget and the worker's slack past it.
    credit_budget_s: float = 30.0
    credit_slack_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: OrderSettings) -> WatchdogPolicy:
        return cls(
            stall_after_s=settings.stall_after_s,
            max_resends=settings.stall_max_resends,
            batch=settings.watchdog_batch,
            credit_budget_s=settings.credit_check_budget_s,
            credit_slack_s=settings.credit_check_slack_s,
        )


class Verdict(StrEnum):
    WAIT = "wait"  # not overdue (or not waiting on a service at all)
    RESEND = "resend"  # ask again
    STALL = "stall"  # asked often enough: a person takes over


def judge(wait: Wait, now: datetime, policy: WatchdogPolicy) -> Verdict:
    """What the watchdog does with ``wait`` at ``now``."""
    if wait.asked_at is None:
        return Verdict.WAIT  # a paid order that never asked for stock waits on its rules
    if wait.state == S.PAID:
        last = max(wait.asked_at, wait.last_resent_at or wait.asked_at)
        due = last + timedelta(seconds=policy.stall_after_s)
    else:
        budget = timedelta(seconds=policy.credit_budget_s)
        runs_out = wait.asked_at
        if wait.last_resent_at is not None:
            runs_out = max(runs_out, wait.last_resent_at + budget)
        due = runs_out + timedelta(seconds=policy.credit_slack_s)
    if now < due:
        return Verdict.WAIT
    return Verdict.RESEND if wait.resends < policy.max_resends else Verdict.STALL


def stall_reason(wait: Wait, now: datetime) -> str:
    """``stalled (<what the order waited for, how long>)`` for the exception queue."""
    waited = int((now - wait.entered_at).total_seconds())
    if wait.state == S.PAID:
        what = f"no stock answer to OrderPaid after {wait.resends} re-sends"
    else:
        what = f"no credit check result after {wait.resends} re-queued checks"
    return f"stalled ({what}, {waited} s in {wait.state})"


@dataclass
class WatchdogRun:
    """What one run did (order ids only: no personal data)."""

    resent: list[uuid.UUID] = field(default_factory=list)
    stalled: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)


class Watchdog:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        policy: WatchdogPolicy,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow_factory
        self._policy = policy
        self._clock = clock

    async def run_once(self) -> WatchdogRun:
        """Every overdue order, batch by batch, each in its own unit of work."""
        now = self._clock()
        policy = self._policy
        budget = timedelta(seconds=policy.credit_budget_s)
        run = WatchdogRun()
        seen: set[uuid.UUID] = set()
        while True:
            async with self._uow() as uow:
                batch = await WatchdogStore(uow.session).overdue(
                    paid_cutoff=now - timedelta(seconds=policy.stall_after_s),
                    credit_cutoff=now - timedelta(seconds=policy.credit_slack_s),
                    credit_budget=budget,
                    limit=policy.batch,
                    skip=seen,
                )
            for order_id in batch:
                seen.add(order_id)
                try:
                    verdict = await self._handle(order_id, now)
                except Exception:
                    run.failed.append(order_id)
                    log.exception("watchdog could not handle order %s", order_id)
                    continue
                if verdict is Verdict.RESEND:
                    run.resent.append(order_id)
                elif verdict is Verdict.STALL:
                    run.stalled.append(order_id)
            if len(batch) < policy.batch:
                break
        if run.resent or run.stalled or run.failed:
            log.warning(
                "watchdog run",
                extra={
                    "resent": len(run.resent),
                    "stalled": len(run.stalled),
                    "failed": len(run.failed),
                },
            )
        return run

    async def _handle(self, order_id: uuid.UUID, now: datetime) -> Verdict:
        """Judge one order again under its lock and act, in one unit of work."""
        policy = self._policy
        async with self._uow() as uow:
            repo = OrderRepository(uow.session)
            order = await repo.get_for_update(order_id)
            if order is None or order.state not in WATCHED:
                return Verdict.WAIT  # answered or moved on meanwhile
            store = WatchdogStore(uow.session)
            wait = await store.wait_of(
                order_id, credit_budget=timedelta(seconds=policy.credit_budget_s)
            )
            if wait is None:
                return Verdict.WAIT
            verdict = judge(wait, now, policy)
            if verdict is Verdict.WAIT:
                return verdict
            if verdict is Verdict.RESEND:
                if order.state is S.PAID:
                    await uow.emit(order_paid_event(order, now))
                elif wait.check_status != ANSWERED:
                    # An answer stored but not applied is the credit sweeper's to apply;
                    # anything else is re-asked with a fresh budget.
                    await requeue_check(uow, order.id, budget_s=policy.credit_budget_s, now=now)
                await store.count_resend(wait, now)
                log.info(
                    "watchdog asked again",
                    extra={"order_id": str(order.id), "state": wait.state},
                )
            else:
                order.raise_exception(stall_reason(wait, now), now)
                await publish_transitions(uow, order)
                await repo.save(order)
                await store.mark_stalled(wait, now)
                log.warning("order stalled", extra={"order_id": str(order.id), "state": wait.state})
            await uow.commit()
            return verdict


def watchdog_job(
    uow_factory: Callable[[], UnitOfWork],
    settings: OrderSettings,
    *,
    clock: Callable[[], datetime] | None = None,
) -> Callable[[], Awaitable[None]]:
    """The periodic job the composition root registers (exclusive: one replica)."""
    policy = WatchdogPolicy.from_settings(settings)

    async def run_watchdog() -> None:
        watchdog = Watchdog(uow_factory, policy, clock=clock or (lambda: datetime.now(UTC)))
        await watchdog.run_once()

    return run_watchdog
