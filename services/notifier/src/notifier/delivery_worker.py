"""The delivery worker: claims due deliveries and sends them, each on its own.

A round claims as many due rows as there are free send slots (``FOR UPDATE SKIP LOCKED``,
so several replicas share the work), and starts one task per row; the next round does
not wait for them. A dead or slow target therefore holds one slot for at most one
attempt's time limit and never delays deliveries to other targets. After an attempt the
row is delivered, rescheduled with backoff, or failed once its give-up time has passed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.adapters.deliveries import ClaimedDelivery, DeliveryRepository
from notifier.adapters.senders import SendResult, SmtpSender, WebhookSender
from notifier.alerting import AlertingConfig
from notifier.domain.delivery import (
    AttemptOutcome,
    RetryPolicy,
    after_attempt,
    email_text,
    encode_body,
    webhook_body,
)
from notifier.domain.subscriptions import TargetPolicy
from notifier.settings import NotifierSettings
from oms_messaging import UnitOfWork
from oms_servicekit.runtime import PeriodicJob

log = logging.getLogger(__name__)

#: How often, and after how long, per-minute digest counters are forgotten.
PURGE_EVERY = timedelta(minutes=10)
WINDOW_RETENTION = timedelta(hours=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryWorker:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        *,
        webhook: WebhookSender,
        smtp: SmtpSender,
        retry: RetryPolicy,
        interval_s: float = 0.5,
        concurrency: int = 50,
        lease_s: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow_factory
        self.webhook = webhook
        self.smtp = smtp
        self._retry = retry
        self._interval = interval_s
        self._concurrency = concurrency
        self._lease_s = lease_s
        self._clock = clock
        self._running: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def run(self) -> None:
        """Until cancelled; cancelling also cancels the sends under way (their rows are
        claimed again when the lease runs out)."""
        last_purge: datetime | None = None
        try:
            while True:
                try:
                    await self.dispatch()
                    now = self._clock()
                    if last_purge is None or now - last_purge > PURGE_EVERY:
                        await self.purge(now)
                        last_purge = now
                except Exception:
                    log.exception("delivery round failed")
                await asyncio.sleep(self._interval)
        finally:
            await self.close()

    async def close(self) -> None:
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        await self.webhook.aclose()

    async def dispatch(self) -> int:
        """Claim what there is room for and start a send per claimed row."""
        free = self._concurrency - len(self._running)
        if free <= 0:
            return 0
        claimed = await self.claim(free)
        for claim in claimed:
            task = asyncio.create_task(self.process(claim), name=f"delivery-{claim.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(claimed)

    async def run_once(self) -> int:
        """Claim due rows and send them all, concurrently, before returning (for tests
        and one-shot use)."""
        claimed = await self.claim(self._concurrency)
        await asyncio.gather(*(self.process(c) for c in claimed))
        return len(claimed)

    async def purge(self, now: datetime) -> int:
        """Forget the per-minute digest counters of windows long past."""
        async with self._uow() as uow:
            purged = await DeliveryRepository(uow.session).purge_windows(now - WINDOW_RETENTION)
            await uow.commit()
        return purged

    async def claim(self, limit: int) -> list[ClaimedDelivery]:
        async with self._uow() as uow:
            claimed = await DeliveryRepository(uow.session).claim(
                limit=limit, now=self._clock(), lease_s=self._lease_s
            )
            await uow.commit()
        return claimed

    async def process(self, claim: ClaimedDelivery) -> None:
        try:
            try:
                result = await self._attempt(claim)  # no transaction open while sending
            except Exception as exc:  # a bug or bad data: count it as a failed attempt,
                # so backoff and the give-up time apply instead of endless re-claims
                log.exception("delivery %s: attempt raised", claim.id)
                result = SendResult(False, error=f"{type(exc).__name__}: {exc}"[:300])
            now = self._clock()
            if result is None:  # the subscription went away meanwhile
                outcome = AttemptOutcome("cancelled", None)
            else:
                outcome = after_attempt(
                    ok=result.ok,
                    attempts=claim.attempts,
                    now=now,
                    give_up_at=claim.give_up_at,
                    policy=self._retry,
                    permanent=result.permanent,
                )
            async with self._uow() as uow:
                recorded = await DeliveryRepository(uow.session).record(
                    claim,
                    outcome,
                    now=now,
                    status=result.status if result else None,
                    error=result.error if result else "subscription deleted",
                )
                await uow.commit()
            log.info(
                "delivery attempt",
                extra={
                    "delivery_id": str(claim.id),
                    "attempt": claim.attempts,
                    "state": outcome.state,
                    "recorded": recorded,
                    "error": result.error if result else None,
                },
            )
        except Exception:
            log.exception("delivery %s failed; its lease runs out and it is tried again", claim.id)

    async def _attempt(self, claim: ClaimedDelivery) -> SendResult | None:
        async with self._uow() as uow:
            repo = DeliveryRepository(uow.session)
            sub = await repo.subscription(claim.subscription_id)
            if sub is None or sub["deleted_at"] is not None:
                return None
            content = await self._content(repo, claim)
        if content is None:
            return SendResult(False, error="alert or digest missing", permanent=True)
        sent_at = self._clock()
        body = webhook_body(delivery_id=str(claim.id), sent_at=sent_at, **content)
        if sub["target_type"] == "webhook":
            return await self.webhook.send(
                sub["target"],
                secret=sub["secret"],
                body=encode_body(body),
                delivery_id=str(claim.id),
                event=body["kind"],
                sent_at=sent_at,
            )
        if sub["target_type"] == "email":
            subject, text = email_text(body)
            return await self.smtp.send(
                sub["target"], subject=subject, body=text, delivery_id=str(claim.id)
            )
        return SendResult(True)  # the board shows stored alerts: nothing to send

    async def _content(
        self, repo: DeliveryRepository, claim: ClaimedDelivery
    ) -> dict[str, Any] | None:
        if claim.alert_id is not None:
            alert = await repo.alert(claim.alert_id)
            return None if alert is None else {"alert": alert}
        assert claim.digest_id is not None
        digest, items = await repo.digest(claim.digest_id)
        return {"digest": digest, "digest_alerts": items}


# -- wiring (used by the composition root) -------------------------------------------


def retry_policy(settings: NotifierSettings) -> RetryPolicy:
    return RetryPolicy(
        base_s=settings.delivery_backoff_base_s,
        cap_s=settings.delivery_backoff_cap_s,
        max_age_s=settings.delivery_max_age_s,
    )


def alerting_config(settings: NotifierSettings) -> AlertingConfig:
    return AlertingConfig(digest_threshold=settings.digest_threshold, retry=retry_policy(settings))


def target_policy(settings: NotifierSettings) -> TargetPolicy:
    """Where webhooks may point: the service's outbound policy."""
    return settings.outbound_policy()


def build_worker(
    settings: NotifierSettings, uow_factory: Callable[[], UnitOfWork]
) -> DeliveryWorker:
    """A worker with its senders; nothing connects until it sends."""
    return DeliveryWorker(
        uow_factory,
        webhook=WebhookSender(
            target_policy(settings),
            attempt_timeout_s=settings.delivery_attempt_timeout_s,
            connect_timeout_s=settings.delivery_connect_timeout_s,
        ),
        smtp=SmtpSender(
            settings.smtp_url,
            sender=settings.smtp_from,
            timeout_s=settings.delivery_attempt_timeout_s,
        ),
        retry=retry_policy(settings),
        interval_s=settings.delivery_worker_interval_s,
        concurrency=settings.delivery_concurrency,
        lease_s=settings.delivery_attempt_timeout_s + 30.0,
    )


def delivery_job(settings: NotifierSettings, uow_factory: Callable[[], UnitOfWork]) -> PeriodicJob:
    """The worker as a runtime job: a long-lived loop (the periodic wrapper only
    restarts it should it ever return)."""

    async def run() -> None:
        await build_worker(settings, uow_factory).run()

    return PeriodicJob("delivery-worker", 0.1, run)
