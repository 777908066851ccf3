"""Persistence of subscriptions (soft-deleted, so past deliveries keep their target).

Creating and deleting one are operator actions: each writes its audit-trail row here, in
the caller's transaction. The row says what the subscription is for (name, event types,
filter, kind of target) but never its target address or signing secret.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.adapters.tables import deliveries, subscriptions
from oms_servicekit.audit import record_audit

#: What an audit row says of a subscription (never ``target`` or ``secret``).
_AUDITED = ("name", "event_types", "channel", "warehouse", "target_type")


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, values: dict[str, Any], *, operator: str) -> dict[str, Any]:
        row = (
            await self._session.execute(
                subscriptions.insert()
                .values(**values, created_by=operator)
                .returning(*subscriptions.c)
            )
        ).one()
        created = dict(row._mapping)
        await record_audit(
            self._session,
            actor=operator,
            action="create",
            entity="subscription",
            entity_id=values["id"],
            before=None,
            after={k: created[k] for k in _AUDITED},
        )
        return created

    async def active(self) -> list[dict[str, Any]]:
        query = (
            select(subscriptions)
            .where(subscriptions.c.deleted_at.is_(None))
            .order_by(subscriptions.c.created_at, subscriptions.c.id)
        )
        return [dict(r._mapping) for r in await self._session.execute(query)]

    async def get_active(self, subscription_id: uuid.UUID) -> dict[str, Any] | None:
        row = (
            await self._session.execute(
                select(subscriptions).where(
                    subscriptions.c.id == subscription_id, subscriptions.c.deleted_at.is_(None)
                )
            )
        ).first()
        return dict(row._mapping) if row is not None else None

    async def for_event_type(self, event_type: str) -> list[dict[str, Any]]:
        """Active subscriptions naming ``event_type`` (filters are checked by the caller)."""
        query = select(subscriptions).where(
            subscriptions.c.deleted_at.is_(None),
            subscriptions.c.event_types.contains([event_type]),
        )
        return [dict(r._mapping) for r in await self._session.execute(query)]

    async def delete(self, subscription_id: uuid.UUID, *, operator: str, at: datetime) -> bool:
        """Deactivate it and cancel its deliveries still under way; False if unknown."""
        done = (
            await self._session.execute(
                update(subscriptions)
                .where(subscriptions.c.id == subscription_id, subscriptions.c.deleted_at.is_(None))
                .values(deleted_at=at, deleted_by=operator)
                .returning(*(subscriptions.c[k] for k in _AUDITED))
            )
        ).first()
        if done is None:
            return False
        await self._session.execute(
            update(deliveries)
            .where(
                deliveries.c.subscription_id == subscription_id,
                deliveries.c.state == "pending",
            )
            .values(state="cancelled", updated_at=func.now(), last_error="subscription deleted")
        )
        await record_audit(
            self._session,
            actor=operator,
            action="delete",
            entity="subscription",
            entity_id=subscription_id,
            before=dict(done._mapping),
            after=None,
        )
        return True
