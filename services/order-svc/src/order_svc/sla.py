"""SLA clocks: started and stopped by transitions, alerted by a scheduler.

:func:`track_sla` runs for every published transition (``publish_transitions``), so a
stage's clock starts and stops in the same transaction as the order's change. The
:class:`SlaScheduler` is a periodic job: for each due clock, in a unit of work of its
own, it claims the clock with ``FOR UPDATE SKIP LOCKED`` (replicas never share a row),
emits ``SlaAtRisk`` or ``SlaBreached``, marks the clock and, for a breach, opens a
``sla_breached`` exception, all in that transaction: an alert is sent once, or not at all
and retried. One clock whose alert fails is logged and counted and the run goes on: one
bad order never silences the alerts of all the others.

The policy is the process's configuration: the composition root calls
:func:`configure` with the one built from settings; until then the defaults apply.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from oms_contracts.events import SlaAtRisk, SlaBreached
from oms_messaging import UnitOfWork
from order_svc.adapters.sla_store import Clock, SlaRepository
from order_svc.domain.order import Order, Transition
from order_svc.domain.sla import (
    Alert,
    Deadline,
    SlaPolicy,
    deadline_for,
    due_alert,
    stages_finished,
    stages_started,
)
from order_svc.exception_queue import open_exception

log = logging.getLogger(__name__)

_policy: SlaPolicy = SlaPolicy.with_overrides()


def configure(policy: SlaPolicy) -> None:
    """Set the policy new clocks are started with (clocks already running keep theirs)."""
    global _policy
    _policy = policy


def current_policy() -> SlaPolicy:
    return _policy


async def track_sla(uow: UnitOfWork, order: Order, transition: Transition) -> None:
    """Start the stages ``transition`` enters and stop the ones it ends.

    The clocks are written just before the transaction commits, all of a consumer batch's
    in one statement per kind (see :class:`_ClockWrites`): nothing in the transaction
    reads them before that.
    """
    writes = await uow.cached(_CLOCK_WRITES, lambda: _ClockWrites.attach(uow))
    for stage in stages_started(transition.to_state):
        deadline = deadline_for(_policy, stage.name, order.channel, order.priority, transition.at)
        if deadline is not None:
            await writes.start(order.id, order.channel, order.priority, deadline)
    finished = [stage.name for stage in stages_finished(transition.to_state)]
    if finished:
        writes.end(order.id, finished, transition.at, transition.to_state.value)


_CLOCK_WRITES = "sla:clock-writes"


class _ClockWrites:
    """The transaction's clock starts and stops, written set-based before it commits.

    Starts are written before stops, which is what writing them in order gives (a start
    never follows a stop of the same clock in one transaction: a stage runs once per
    order), except when a stop comes first for a clock not started yet; then what is
    buffered is written at once, before the start, to keep the order exact.
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self._repo = SlaRepository(uow.session)
        self._starts: dict[tuple[uuid.UUID, str], tuple[str, str, Deadline]] = {}
        self._ends: dict[tuple[uuid.UUID, str], tuple[datetime, str]] = {}

    @classmethod
    async def attach(cls, uow: UnitOfWork) -> _ClockWrites:
        writes = cls(uow)

        async def flush() -> None:
            uow.forget(_CLOCK_WRITES)
            await writes.flush()

        uow.before_commit(flush)
        return writes

    async def start(
        self, order_id: uuid.UUID, channel: str, order_class: str, deadline: Deadline
    ) -> None:
        key = (order_id, deadline.stage)
        if key in self._ends:
            await self.flush()
        self._starts.setdefault(key, (channel, order_class, deadline))

    def end(self, order_id: uuid.UUID, stages: list[str], at: datetime, state: str) -> None:
        for stage in stages:
            self._ends.setdefault((order_id, stage), (at, state))  # the first stop stands

    async def flush(self) -> None:
        starts, self._starts = self._starts, {}
        ends, self._ends = self._ends, {}
        await self._repo.start_many([(o, ch, cls, d) for (o, _), (ch, cls, d) in starts.items()])
        await self._repo.end_many([(o, st, at, state) for (o, st), (at, state) in ends.items()])


class SlaScheduler:
    """Sends the alerts open clocks owe; run it every second or so."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        *,
        batch_size: int = 200,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow_factory
        self._batch_size = batch_size
        self._clock = clock
        #: Clocks whose alert failed, since the scheduler was made (each is logged).
        self.failures = 0

    async def run_once(self) -> int:
        """Sweep until nothing is due (batch by batch); the number of alerts sent.

        Each clock is alerted in its own transaction. A clock that fails is logged,
        counted in :attr:`failures` and skipped for the rest of the run (the next run
        tries it again); so are clocks another replica holds.
        """
        total = 0
        tried: set[tuple[uuid.UUID, str]] = set()
        while True:
            sent, claimed = await self.sweep(tried)
            total += sent
            if claimed < self._batch_size:
                break
        if total:
            log.info("SLA alerts sent", extra={"alerts": total})
        return total

    async def sweep(self, tried: set[tuple[uuid.UUID, str]] | None = None) -> tuple[int, int]:
        """One batch, one transaction per clock: (alerts sent, clocks looked at).

        ``tried`` collects the clocks looked at (and is left out of the batch).
        """
        tried = set() if tried is None else tried
        now = self._clock()
        async with self._uow() as uow:
            keys = await SlaRepository(uow.session).due(now, self._batch_size, skip=tried)
        sent = 0
        for order_id, stage in keys:
            tried.add((order_id, stage))
            try:
                if await self._alert_one(order_id, stage, now):
                    sent += 1
            except Exception:
                self.failures += 1
                log.exception("SLA alert for order %s (stage %s) failed", order_id, stage)
        return sent, len(keys)

    async def _alert_one(self, order_id: uuid.UUID, stage: str, now: datetime) -> bool:
        async with self._uow() as uow:
            repo = SlaRepository(uow.session)
            clock = await repo.claim(order_id, stage, now)
            if clock is None:
                return False  # alerted meanwhile, ended, or held by another replica
            if not await self._alert(uow, repo, clock, now):
                return False
            await uow.commit()
            return True

    async def _alert(
        self, uow: UnitOfWork, repo: SlaRepository, clock: Clock, now: datetime
    ) -> bool:
        alert = due_alert(
            clock.deadline,
            at_risk_sent=clock.at_risk_sent,
            breached_sent=clock.breached_sent,
            now=now,
        )
        if alert is Alert.AT_RISK:
            await uow.emit(
                SlaAtRisk(
                    order_id=clock.order_id,
                    channel=clock.channel,
                    order_class=clock.order_class,
                    stage=clock.stage,
                    deadline=clock.deadline.deadline_at,
                    raised_at=now,
                )
            )
            await repo.mark_sent(clock, at=now, at_risk=True)
            return True
        if alert is Alert.BREACHED:
            await uow.emit(
                SlaBreached(
                    order_id=clock.order_id,
                    channel=clock.channel,
                    order_class=clock.order_class,
                    stage=clock.stage,
                    deadline=clock.deadline.deadline_at,
                    raised_at=now,
                )
            )
            # A warning nobody got before the deadline is marked, never sent late.
            await repo.mark_sent(clock, at=now, at_risk=not clock.at_risk_sent, breached=True)
            await open_exception(
                uow,
                order_id=clock.order_id,
                channel=clock.channel,
                cause="sla_breached",
                detail=f"{clock.stage} deadline {clock.deadline.deadline_at.isoformat()} passed",
                at=now,
            )
            return True
        return False
