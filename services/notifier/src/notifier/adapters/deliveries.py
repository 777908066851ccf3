"""Persistence of deliveries and digests: planning, claiming, recording attempts.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` in a short transaction and marked
``in_flight`` with a lease (``claimed_until``); the send happens with no transaction
open; the outcome is written only if the row is still the claim this worker made
(same state and attempt count), so a worker that lost its lease cannot overwrite a newer
attempt. A claim whose lease ran out (the worker died mid-send) is claimed again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.adapters.tables import (
    alert_windows,
    alerts,
    deliveries,
    digest_alerts,
    digests,
    subscriptions,
)
from notifier.domain.delivery import AttemptOutcome


@dataclass(frozen=True)
class ClaimedDelivery:
    id: uuid.UUID
    subscription_id: uuid.UUID
    alert_id: uuid.UUID | None
    digest_id: uuid.UUID | None
    attempts: int
    give_up_at: datetime


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- planning (in the unit of work that raised the alert) ---------------------------

    async def add(
        self,
        *,
        subscription_id: uuid.UUID,
        now: datetime,
        give_up_at: datetime,
        alert_id: uuid.UUID | None = None,
        digest_id: uuid.UUID | None = None,
        next_attempt_at: datetime | None = None,
        delivered: bool = False,
    ) -> uuid.UUID:
        delivery_id = uuid.uuid4()
        await self._session.execute(
            deliveries.insert().values(
                id=delivery_id,
                subscription_id=subscription_id,
                alert_id=alert_id,
                digest_id=digest_id,
                state="delivered" if delivered else "pending",
                next_attempt_at=next_attempt_at or now,
                give_up_at=give_up_at,
                delivered_at=now if delivered else None,
                created_at=now,
                updated_at=now,
            )
        )
        return delivery_id

    async def count_in_window(
        self, subscription_id: uuid.UUID, alert_type: str, window_start: datetime
    ) -> tuple[int, uuid.UUID | None]:
        """Count one more alert in the window; its new count and its digest (if any).

        The upsert locks the window's row until commit, so concurrent alerts of one
        window are counted (and a digest created) one at a time.
        """
        insert = pg_insert(alert_windows).values(
            subscription_id=subscription_id,
            alert_type=alert_type,
            window_start=window_start,
            alerts=1,
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[
                alert_windows.c.subscription_id,
                alert_windows.c.alert_type,
                alert_windows.c.window_start,
            ],
            set_={"alerts": alert_windows.c.alerts + 1},
        ).returning(alert_windows.c.alerts, alert_windows.c.digest_id)
        row = (await self._session.execute(stmt)).one()
        return int(row.alerts), row.digest_id

    async def create_digest(
        self, subscription_id: uuid.UUID, alert_type: str, window_start: datetime
    ) -> uuid.UUID:
        digest_id = uuid.uuid4()
        await self._session.execute(
            digests.insert().values(
                id=digest_id,
                subscription_id=subscription_id,
                alert_type=alert_type,
                window_start=window_start,
            )
        )
        await self._session.execute(
            update(alert_windows)
            .where(
                alert_windows.c.subscription_id == subscription_id,
                alert_windows.c.alert_type == alert_type,
                alert_windows.c.window_start == window_start,
            )
            .values(digest_id=digest_id)
        )
        return digest_id

    async def subscriptions_served(self, alert_id: uuid.UUID) -> set[uuid.UUID]:
        """Subscriptions that already have ``alert_id`` on its way (alone or in a digest)."""
        direct = select(deliveries.c.subscription_id).where(deliveries.c.alert_id == alert_id)
        via_digest = (
            select(deliveries.c.subscription_id)
            .join(digest_alerts, digest_alerts.c.digest_id == deliveries.c.digest_id)
            .where(digest_alerts.c.alert_id == alert_id)
        )
        rows = await self._session.execute(direct.union(via_digest))
        return {r[0] for r in rows}

    async def add_to_digest(self, digest_id: uuid.UUID, alert_id: uuid.UUID) -> None:
        await self._session.execute(
            pg_insert(digest_alerts)
            .values(digest_id=digest_id, alert_id=alert_id)
            .on_conflict_do_nothing()
        )

    async def purge_windows(self, before: datetime) -> int:
        """Drop digest counters of windows that started before ``before`` (the digests
        themselves stay: deliveries and GET /alerts refer to them)."""
        result = await self._session.execute(
            delete(alert_windows).where(alert_windows.c.window_start < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    # -- the worker -------------------------------------------------------------------

    async def claim(self, *, limit: int, now: datetime, lease_s: float) -> list[ClaimedDelivery]:
        """Due rows (and lost claims), marked in flight with one more attempt counted."""
        rows = (
            await self._session.execute(
                text(
                    "UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1,"
                    " claimed_until = :lease_end, updated_at = :now"
                    " WHERE id IN (SELECT id FROM deliveries"
                    "   WHERE (state = 'pending' AND next_attempt_at <= :now)"
                    "      OR (state = 'in_flight' AND claimed_until < :now)"
                    "   ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED)"
                    " RETURNING id, subscription_id, alert_id, digest_id, attempts, give_up_at"
                ),
                {"now": now, "lease_end": now + timedelta(seconds=lease_s), "limit": limit},
            )
        ).all()
        return [
            ClaimedDelivery(
                r.id, r.subscription_id, r.alert_id, r.digest_id, r.attempts, r.give_up_at
            )
            for r in rows
        ]

    async def subscription(self, subscription_id: uuid.UUID) -> dict[str, Any] | None:
        row = (
            await self._session.execute(
                select(subscriptions).where(subscriptions.c.id == subscription_id)
            )
        ).first()
        return dict(row._mapping) if row is not None else None

    async def alert(self, alert_id: uuid.UUID) -> dict[str, Any] | None:
        row = (await self._session.execute(select(alerts).where(alerts.c.id == alert_id))).first()
        return dict(row._mapping) if row is not None else None

    async def digest(self, digest_id: uuid.UUID) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A digest and its alerts, oldest first."""
        head = (await self._session.execute(select(digests).where(digests.c.id == digest_id))).one()
        items = await self._session.execute(
            select(alerts)
            .join(digest_alerts, digest_alerts.c.alert_id == alerts.c.id)
            .where(digest_alerts.c.digest_id == digest_id)
            .order_by(alerts.c.raised_at, alerts.c.id)
        )
        return dict(head._mapping), [dict(r._mapping) for r in items]

    async def record(
        self,
        claim: ClaimedDelivery,
        outcome: AttemptOutcome,
        *,
        now: datetime,
        status: int | None,
        error: str | None,
    ) -> bool:
        """Write an attempt's outcome if the claim is still ours; whether it was."""
        values: dict[str, Any] = {
            "state": outcome.state,
            "claimed_until": None,
            "last_status": status,
            "last_error": error[:500] if error else None,
            "updated_at": now,
        }
        if outcome.state == "delivered":
            values["delivered_at"] = now
        if outcome.next_attempt_at is not None:
            values["next_attempt_at"] = outcome.next_attempt_at
        done = (
            await self._session.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == claim.id,
                    deliveries.c.state == "in_flight",
                    deliveries.c.attempts == claim.attempts,
                )
                .values(**values)
                .returning(deliveries.c.id)
            )
        ).first()
        return done is not None

    # -- reading ----------------------------------------------------------------------

    async def of_alerts(self, alert_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
        """Each alert's deliveries: its own and those of digests it is part of."""
        found: dict[uuid.UUID, list[dict[str, Any]]] = {a: [] for a in alert_ids}
        if not alert_ids:
            return found
        columns = [
            deliveries.c.id,
            deliveries.c.subscription_id,
            deliveries.c.digest_id,
            deliveries.c.state,
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
            deliveries.c.last_status,
            deliveries.c.last_error,
            deliveries.c.delivered_at,
            subscriptions.c.target_type,
        ]
        direct = (
            select(deliveries.c.alert_id.label("for_alert"), *columns)
            .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
            .where(deliveries.c.alert_id.in_(alert_ids))
        )
        via_digest = (
            select(digest_alerts.c.alert_id.label("for_alert"), *columns)
            .join(deliveries, deliveries.c.digest_id == digest_alerts.c.digest_id)
            .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
            .where(digest_alerts.c.alert_id.in_(alert_ids))
        )
        query = direct.union_all(via_digest)
        for row in await self._session.execute(query):
            item = dict(row._mapping)
            found[item.pop("for_alert")].append(item)
        for items in found.values():
            items.sort(key=lambda d: (str(d["subscription_id"]), str(d["id"])))
        return found

    async def counts_by_state(self) -> dict[str, int]:
        rows = await self._session.execute(
            select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
        )
        return {r[0]: int(r[1]) for r in rows}
