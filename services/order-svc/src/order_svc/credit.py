"""The credit check, outside the Kafka consumer.

The consumer only moves a paid order to ``credit_check`` and writes a pending
``credit_checks`` row in the same transaction. This worker (a long-lived task the
runtime starts) claims pending rows with ``FOR UPDATE SKIP LOCKED`` in a short
transaction, calls the bureau with no transaction open, and then, in one unit of work,
moves the order on:

- approved -> ``paid``, then the workflow rules: held for review, or OrderPaid
  (inventory reserves);
- refused -> ``exception`` with the bureau's reason;
- degraded (timeout, open breaker, error) -> ``paid`` as "credit OK", the order flagged
  ``credit_degraded`` and one CreditCheckDegraded (notifier counts them into one incident
  alert, which the first answer after them closes: CreditCheckRecovered);
- pending (202) -> waits for ``POST /credit/callback`` until the deadline.

An answer (approved or refused) is made durable before anything acts on it: the worker
commits it on the check row (status ``answered``) and only then applies it in a second
unit of work. A refusal is thereby applied or retried, never lost: the one way a check
degrades to "credit OK" is that no answer came (timeout, open breaker, a bureau error, or
a 202 whose callback never arrived within the budget).

A sweeper, every round and each check in its own transaction (one failing check never
stops the others):

- degrades a pending or awaiting-callback check at its deadline (no answer came);
- applies an answer that was stored but not applied (its unit of work failed);
- re-asks an in-flight check past its deadline plus the slack (the worker died mid-call,
  or the answer could not be stored: nobody knows what the bureau said), at most
  ``max_asks`` times; beyond that the order watchdog takes over (order_svc.watchdog).

Applying a result is conditional on the check row still being in the state the applier
saw, so a late or duplicate result changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update

from oms_contracts.events import CreditCheckDegraded, CreditCheckRecovered
from oms_messaging import UnitOfWork
from order_svc.adapters.credit_bureau import CreditBureauClient, CreditDecision
from order_svc.adapters.repository import OrderRepository
from order_svc.adapters.tables import credit_checks, orders
from order_svc.domain.credit_policy import EVERY_ORDER, CreditPolicy
from order_svc.domain.order import Order, OrderState
from order_svc.publishing import order_paid_event, publish_transitions
from order_svc.routing import RoutingConfig
from order_svc.settings import OrderSettings
from order_svc.workflow import WorkflowConfig, continue_paid_order

log = logging.getLogger(__name__)

OPEN = ("pending", "in_flight", "awaiting_callback")
#: Set by ``paid_orders.credit_request`` (whether the order waits for the check), taken
#: off the request before it is stored or sent.
CHECK_REQUIRED = "_check_required"
#: An answer of the bureau committed on the check row, not yet applied to the order.
ANSWERED = "answered"
SIGNATURE_HEADER = "X-Credit-Signature"


def sign_callback(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, raw body)>``, what the bureau sends."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_callback(secret: str, body: bytes, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    return hmac.compare_digest(sign_callback(secret, body), signature.strip())


@dataclass(frozen=True)
class CreditConfig:
    enabled: bool
    budget_s: float
    callback_url: str | None = None
    #: Which orders need the check when a bureau is set up (built from the settings by
    #: :func:`credit_config`; constructed directly, every order is checked).
    policy: CreditPolicy = EVERY_ORDER

    def reason(self, order: Order, payment_terms: str | None = None) -> str | None:
        """Why ``order`` is checked, or None when it goes on without a check."""
        if not self.enabled:
            return None
        return self.policy.reason(
            channel=order.channel, payment_terms=payment_terms, total=order.total
        )


def credit_policy(settings: OrderSettings) -> CreditPolicy:
    return CreditPolicy.of(
        channels=settings.credit_check_channels,
        payment_terms=settings.credit_check_payment_terms,
        amount_over=settings.credit_check_amount_over,
        every_order=settings.credit_check_every_order,
    )


def credit_config(settings: OrderSettings) -> CreditConfig:
    return CreditConfig(
        enabled=bool(settings.credit_check_url),
        budget_s=settings.credit_check_budget_s,
        callback_url=settings.callback_url() if settings.credit_callback_secret else None,
        policy=credit_policy(settings),
    )


async def record_credit_check(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    payload: dict[str, Any],
    config: CreditConfig,
    now: datetime,
) -> None:
    """Record the check of a new paid order (in the consumer's unit of work).

    When the order needs the check (it is in ``credit_check``: see
    ``paid_orders.decide_paid_order``) the row is pending and the worker takes over; else
    the skip is recorded: "not configured" without a bureau, "not required" when the
    rule lets the order go on unchecked.
    """
    await record_credit_checks(uow, [(order_id, payload)], config, now)


#: A batch's credit checks in one constant statement (prepared once; a multi-row VALUES
#: was compiled anew for every batch, a tenth of order-svc's time on a promotion day).
_INSERT_CHECKS = text(
    "INSERT INTO credit_checks (order_id, status, request, requested_at, deadline_at,"
    " finished_at, detail)"
    " SELECT o, s, r::jsonb, rq, dl, f, d FROM unnest(CAST(:orders AS uuid[]),"
    " CAST(:statuses AS text[]), CAST(:requests AS text[]), CAST(:requested AS timestamptz[]),"
    " CAST(:deadlines AS timestamptz[]), CAST(:finished AS timestamptz[]),"
    " CAST(:details AS text[])) AS x(o, s, r, rq, dl, f, d)"
)


async def record_credit_checks(
    uow: UnitOfWork,
    checks: list[tuple[uuid.UUID, dict[str, Any]]],
    config: CreditConfig,
    now: datetime,
) -> None:
    """:func:`record_credit_check` for a batch of new paid orders: one insert for all
    (a promotion day's prepaid orders each record a skip)."""
    rows = []
    for order_id, request in checks:
        payload = dict(request)
        required = payload.pop(CHECK_REQUIRED, config.enabled)
        if not (config.enabled and required):
            rows.append(
                {
                    "order_id": order_id,
                    "status": "skipped",
                    "request": payload,
                    "requested_at": now,
                    "deadline_at": now,
                    "finished_at": now,
                    "detail": "not required" if config.enabled else "not configured",
                }
            )
            continue
        if config.callback_url:
            payload = {**payload, "callback_url": config.callback_url}
        rows.append(
            {
                "order_id": order_id,
                "status": "pending",
                "request": payload,
                "requested_at": now,
                "deadline_at": now + timedelta(seconds=config.budget_s),
                "finished_at": None,
                "detail": None,
            }
        )
    if rows:
        await uow.session.execute(
            _INSERT_CHECKS,
            {
                "orders": [r["order_id"] for r in rows],
                "statuses": [r["status"] for r in rows],
                "requests": [json.dumps(r["request"]) for r in rows],
                "requested": [r["requested_at"] for r in rows],
                "deadlines": [r["deadline_at"] for r in rows],
                "finished": [r["finished_at"] for r in rows],
                "details": [r["detail"] for r in rows],
            },
        )


async def apply_decision(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    decision: CreditDecision,
    *,
    expected: Iterable[str],
    now: datetime | None = None,
    routing: RoutingConfig | None = None,
    workflow: WorkflowConfig | None = None,
) -> bool:
    """Apply ``decision`` if the check is still in one of the ``expected`` states.

    Runs in the caller's unit of work (the caller commits). Locks the order first, then
    the check row (the order in which the consumer created them). Returns whether the
    decision was applied.
    """
    now = now or datetime.now(UTC)
    repo = OrderRepository(uow.session)
    order = await repo.get_for_update(order_id)
    status = (
        await uow.session.execute(
            select(credit_checks.c.status)
            .where(credit_checks.c.order_id == order_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if status is None or status not in set(expected):
        return False
    if decision.outcome == "pending":
        await uow.session.execute(
            update(credit_checks)
            .where(credit_checks.c.order_id == order_id)
            .values(status="awaiting_callback", external_ref=decision.external_ref)
        )
        return True
    await uow.session.execute(
        update(credit_checks)
        .where(credit_checks.c.order_id == order_id)
        .values(
            status=decision.outcome,
            finished_at=now,
            degraded_reason=decision.degraded_reason,
            detail=decision.detail,
        )
    )
    if order is None or order.state is not OrderState.CREDIT_CHECK:
        return True  # cancelled meanwhile: the answer is recorded, the order stays put
    if decision.outcome == "approved":
        order.credit_approved(now)
    elif decision.outcome == "refused":
        order.credit_refused(decision.detail or "refused", now)
    else:
        reason = decision.degraded_reason or "error"
        order.credit_check_degraded(reason, now)
        await uow.emit(
            CreditCheckDegraded(
                order_id=order.id,
                channel=order.channel,
                reason=reason,
                detail=decision.detail,
                degraded_at=now,
            )
        )
    reserve = False
    if decision.outcome != "refused":  # credit OK (or treated as OK): the rules go on
        reserve = await continue_paid_order(
            uow, order, workflow or WorkflowConfig(), routing or RoutingConfig(), now
        )
    await publish_transitions(uow, order)
    if reserve:
        await uow.emit(order_paid_event(order, now))
    await repo.save(order)
    return True


async def store_answer(uow: UnitOfWork, order_id: uuid.UUID, decision: CreditDecision) -> bool:
    """Record the bureau's answer on an in-flight check, before anything acts on it.

    Committed on its own, the answer survives whatever happens to its application: the
    sweeper applies a stored answer again, it never degrades it. False when the check is
    no longer in flight (re-asked or settled meanwhile): the answer is then not needed.
    """
    stored = await uow.session.execute(
        text(
            "UPDATE credit_checks SET status = :answered, answer = :answer,"
            " detail = :detail, answered_at = :now"
            " WHERE order_id = :order_id AND status = 'in_flight'"
            " RETURNING order_id"
        ),
        {
            "answered": ANSWERED,
            "answer": decision.outcome,
            "detail": decision.detail,
            "now": datetime.now(UTC),
            "order_id": order_id,
        },
    )
    return stored.first() is not None


async def stored_decision(uow: UnitOfWork, order_id: uuid.UUID) -> CreditDecision | None:
    """The answer stored on an ``answered`` check, as the decision to apply."""
    row = (
        await uow.session.execute(
            text(
                "SELECT answer, detail FROM credit_checks"
                " WHERE order_id = :order_id AND status = :answered"
            ),
            {"order_id": order_id, "answered": ANSWERED},
        )
    ).first()
    if row is None or row.answer not in ("approved", "refused"):
        return None
    return CreditDecision(row.answer, detail=row.detail)


async def requeue_check(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    *,
    budget_s: float,
    now: datetime,
    statuses: Iterable[str] = OPEN,
) -> bool:
    """Ask the bureau again: the check goes back to ``pending`` with a fresh budget.

    Only for an order still in ``credit_check`` whose check is in one of ``statuses``
    (an open one: nothing is known of the bureau's answer). A stored answer is never
    re-asked, so a refusal cannot be traded for a second chance. Locks the order first,
    then the check, like every other writer. True when the check was re-queued.
    """
    state = (
        await uow.session.execute(
            select(orders.c.state).where(orders.c.id == order_id).with_for_update()
        )
    ).scalar_one_or_none()
    if state != OrderState.CREDIT_CHECK.value:
        return False
    requeued = await uow.session.execute(
        update(credit_checks)
        .where(credit_checks.c.order_id == order_id, credit_checks.c.status.in_(list(statuses)))
        .values(
            status="pending",
            requested_at=now,
            deadline_at=now + timedelta(seconds=budget_s),
            claimed_at=None,
        )
        .returning(credit_checks.c.order_id)
    )
    return requeued.first() is not None


@dataclass(frozen=True)
class ClaimedCheck:
    order_id: uuid.UUID
    deadline_at: datetime
    request: dict[str, Any]


class CreditCheckWorker:
    """Claims pending checks, calls the bureau concurrently, applies the answers."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        client: CreditBureauClient,
        *,
        interval_s: float = 0.2,
        concurrency: int = 50,
        slack_s: float = 1.0,
        max_asks: int = 3,
        sweep_batch: int = 500,
        routing: RoutingConfig | None = None,
        workflow: WorkflowConfig | None = None,
    ) -> None:
        self._uow = uow_factory
        self._routing = routing
        self._workflow = workflow
        self.client = client
        self._interval = interval_s
        self._concurrency = concurrency
        self._slack = timedelta(seconds=slack_s)
        self._max_asks = max_asks
        self._sweep_batch = sweep_batch
        self._running: set[asyncio.Task[None]] = set()
        #: Checks the sweeper could not handle, since the worker started (each is logged).
        self.sweep_failures = 0
        #: Whether checks degraded since the bureau last answered (notifier keeps one
        #: incident alert open meanwhile). Unknown at start: the first answer closes
        #: whatever incident an earlier run left open.
        self._incident_open = True

    async def run(self) -> None:
        """Until cancelled; cancelling also cancels the calls under way."""
        try:
            while True:
                try:
                    await self.sweep()
                    await self.dispatch()
                except Exception:
                    log.exception("credit worker round failed")
                await asyncio.sleep(self._interval)
        finally:
            for task in list(self._running):
                task.cancel()
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            await self.client.aclose()

    async def dispatch(self) -> int:
        """Claim what there is room for and start a call per claimed check."""
        free = self._concurrency - len(self._running)
        if free <= 0:
            return 0
        claimed = await self.claim(free)
        for check in claimed:
            task = asyncio.create_task(self.process(check), name=f"credit-check-{check.order_id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(claimed)

    async def claim(self, limit: int) -> list[ClaimedCheck]:
        async with self._uow() as uow:
            rows = (
                await uow.session.execute(
                    text(
                        "UPDATE credit_checks SET status = 'in_flight', claimed_at = now(),"
                        " claims = claims + 1"
                        " WHERE order_id IN (SELECT order_id FROM credit_checks"
                        "   WHERE status = 'pending' ORDER BY requested_at"
                        "   LIMIT :limit FOR UPDATE SKIP LOCKED)"
                        " RETURNING order_id, deadline_at, request"
                    ),
                    {"limit": limit},
                )
            ).all()
            await uow.commit()
        return [ClaimedCheck(r.order_id, r.deadline_at, r.request) for r in rows]

    async def process(self, check: ClaimedCheck) -> None:
        try:
            budget = (check.deadline_at - datetime.now(UTC)).total_seconds()
            decision = await self.client.check(check.request, budget)  # no transaction open
            expected = "in_flight"
            if decision.outcome in ("approved", "refused"):
                # Durable before anything acts on it: should this commit fail, the check
                # stays in flight and is re-asked; should the next one fail, the stored
                # answer is applied again. Never degraded.
                async with self._uow() as uow:
                    if not await store_answer(uow, check.order_id, decision):
                        return  # re-asked or settled meanwhile
                    await uow.commit()
                expected = ANSWERED
            async with self._uow() as uow:
                await self._apply(uow, check.order_id, decision, expected=expected)
            log.info(
                "credit check done",
                extra={"order_id": str(check.order_id), "outcome": decision.outcome},
            )
        except Exception:
            log.exception(
                "credit check of %s failed; the sweeper applies or re-asks it", check.order_id
            )

    async def _apply(
        self,
        uow: UnitOfWork,
        order_id: uuid.UUID,
        decision: CreditDecision,
        *,
        expected: str,
        now: datetime | None = None,
    ) -> bool:
        """Apply ``decision`` and commit; the first answer of the bureau after degraded
        checks also ends their incident (CreditCheckRecovered, in the same commit)."""
        if not await apply_decision(
            uow,
            order_id,
            decision,
            expected=[expected],
            now=now,
            routing=self._routing,
            workflow=self._workflow,
        ):
            return False
        answered = decision.outcome != "degraded"
        if answered and self._incident_open:
            await uow.emit(CreditCheckRecovered(recovered_at=now or datetime.now(UTC)))
        await uow.commit()
        self._incident_open = not answered
        return True

    async def sweep(self) -> int:
        """Settle the checks nobody else will: each in its own unit of work.

        Degrades open checks past their deadline that never got an answer, applies
        stored answers that were not applied, re-asks in-flight checks whose outcome is
        unknown. A check that fails is logged and counted, and the others go on.
        Returns how many checks were settled or re-asked.
        """
        now = datetime.now(UTC)
        async with self._uow() as uow:
            rows = (
                await uow.session.execute(
                    text(
                        "SELECT order_id, status FROM credit_checks"
                        " WHERE (status IN ('pending', 'awaiting_callback')"
                        "        AND deadline_at <= :now)"
                        "    OR (status = 'in_flight' AND deadline_at <= :stale"
                        "        AND claims < :max_asks)"
                        "    OR (status = :answered AND answered_at <= :stale_answer)"
                        " ORDER BY deadline_at LIMIT :limit"
                    ),
                    {
                        "now": now,
                        "stale": now - self._slack,
                        "max_asks": self._max_asks,
                        "answered": ANSWERED,
                        "stale_answer": now - self._slack,
                        "limit": self._sweep_batch,
                    },
                )
            ).all()
        done = 0
        for row in rows:
            try:
                if await self._settle(row.order_id, row.status, now):
                    done += 1
            except Exception:
                self.sweep_failures += 1
                log.exception(
                    "credit sweep could not settle the check of order %s (status %s)",
                    row.order_id,
                    row.status,
                )
        return done

    async def _settle(self, order_id: uuid.UUID, status: str, now: datetime) -> bool:
        """One check of the sweep, in its own unit of work."""
        async with self._uow() as uow:
            if status == "in_flight":
                # Unknown outcome: re-ask with a fresh budget (a refusal may have been
                # lost: degrading now could turn it into "credit OK").
                if await requeue_check(
                    uow,
                    order_id,
                    budget_s=self.client.policy.budget_s,
                    now=now,
                    statuses=["in_flight"],
                ):
                    await uow.commit()
                    log.warning("credit check re-asked", extra={"order_id": str(order_id)})
                    return True
                # The order has left credit_check: close the check, nothing moves.
                decision = CreditDecision.degraded("timeout", "no answer; the order moved on")
            elif status == ANSWERED:
                stored = await stored_decision(uow, order_id)
                if stored is None:
                    return False
                decision = stored
            else:
                detail = (
                    "no callback from the bureau within the budget"
                    if status == "awaiting_callback"
                    else "no answer within the budget"
                )
                decision = CreditDecision.degraded("timeout", detail)
            return await self._apply(uow, order_id, decision, expected=status, now=now)


async def record_callback(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    decision: str,
    reason: str | None,
    routing: RoutingConfig | None = None,
    workflow: WorkflowConfig | None = None,
) -> str:
    """A bureau callback: applied while the check is open and in budget, else recorded.

    Returns ``applied``, ``late`` (after the budget: recorded, the order is not moved
    back) or ``unknown``.
    """
    now = datetime.now(UTC)
    row = (
        await uow.session.execute(
            select(credit_checks.c.status, credit_checks.c.deadline_at).where(
                credit_checks.c.order_id == order_id
            )
        )
    ).first()
    if row is None:
        return "unknown"
    outcome = CreditDecision(
        "approved" if decision == "approved" else "refused", detail=reason or None
    )
    in_budget = row.status in OPEN and now <= row.deadline_at
    applied = in_budget and await apply_decision(
        uow, order_id, outcome, expected=OPEN, now=now, routing=routing, workflow=workflow
    )
    await uow.session.execute(
        update(credit_checks)
        .where(credit_checks.c.order_id == order_id)
        .values(callback_at=now, callback_decision=decision, callback_late=not applied)
    )
    return "applied" if applied else "late"
