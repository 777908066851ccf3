"""Notifier persistence: the event log and the alerts (an acknowledgement writes its
audit-trail row here, in the caller's transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.adapters.tables import alerts, events
from notifier.domain.rules import AlertSpec
from oms_contracts import Envelope
from oms_servicekit.audit import record_audit


class EventLog:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(self, envelope: Envelope) -> bool:
        """Store ``envelope`` unless an event with its id is stored; True if stored now."""
        result = await self._session.execute(
            pg_insert(events)
            .values(
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                schema_version=envelope.schema_version,
                key=envelope.key,
                producer=envelope.producer,
                correlation_id=envelope.correlation_id,
                causation_id=envelope.causation_id,
                occurred_at=envelope.occurred_at,
                payload=envelope.payload,
            )
            .on_conflict_do_nothing(index_elements=[events.c.event_id])
            .returning(events.c.event_id)
        )
        return result.first() is not None

    async def latest(
        self, *, limit: int, event_type: str | None = None, key: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest events first, optionally of one type and/or one key."""
        query = select(events).order_by(events.c.seq.desc()).limit(limit)
        if event_type:
            query = query.where(events.c.event_type == event_type)
        if key:
            query = query.where(events.c.key == key)
        return [dict(r._mapping) for r in await self._session.execute(query)]


class AlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert(
        self, spec: AlertSpec, *, alert_id: uuid.UUID, raised_at: datetime, source: str
    ) -> bool:
        """Store the alert ``spec`` describes as open; False (nothing stored) when its id
        is known or a live alert of its dedupe key exists (same cause, same subject)."""
        result = await self._session.execute(
            pg_insert(alerts)
            .values(
                id=alert_id,
                alert_type=spec.alert_type,
                severity=spec.severity,
                subject=spec.subject,
                message=spec.message,
                details=spec.details,
                source=source,
                raised_at=raised_at,
                state="open",
                event_type=spec.event_type,
                dedupe_key=spec.dedupe_key,
                channel=spec.channel,
                warehouse=spec.warehouse,
            )
            .on_conflict_do_nothing()
            .returning(alerts.c.id)
        )
        return result.first() is not None

    async def latest(
        self,
        *,
        limit: int,
        state: str | None = None,
        alert_type: str | None = None,
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; ``alert_type`` matches the cause or the event type."""
        query = select(alerts).order_by(alerts.c.raised_at.desc(), alerts.c.id).limit(limit)
        if state:
            query = query.where(alerts.c.state == state)
        if alert_type:
            query = query.where(
                or_(alerts.c.alert_type == alert_type, alerts.c.event_type == alert_type)
            )
        if since is not None:
            query = query.where(alerts.c.raised_at >= since)
        return [dict(r._mapping) for r in await self._session.execute(query)]

    async def get(self, alert_id: uuid.UUID, *, for_update: bool = False) -> dict[str, Any] | None:
        query = select(alerts).where(alerts.c.id == alert_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).first()
        return dict(row._mapping) if row is not None else None

    async def acknowledge(self, alert_id: uuid.UUID, *, operator: str, at: datetime) -> None:
        """Acknowledge an open alert (the caller checked it is open), audited."""
        await self._session.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(state="acknowledged", acknowledged_by=operator, acknowledged_at=at)
        )
        await record_audit(
            self._session,
            actor=operator,
            action="acknowledge",
            entity="alert",
            entity_id=alert_id,
            before={"state": "open"},
            after={"state": "acknowledged", "acknowledged_at": at},
        )

    async def live_id(self, dedupe_key: str) -> uuid.UUID | None:
        """The open or acknowledged alert of ``dedupe_key``, if there is one."""
        row = await self._session.execute(
            select(alerts.c.id).where(
                alerts.c.dedupe_key == dedupe_key, alerts.c.state != "resolved"
            )
        )
        found = row.first()
        return found.id if found is not None else None

    async def resolve_live(self, dedupe_key: str, *, actor: str, at: datetime) -> list[uuid.UUID]:
        """Resolve the live alert of ``dedupe_key`` (if any): the cause is dealt with, so a
        new occurrence is a new alert."""
        rows = await self._session.execute(
            update(alerts)
            .where(alerts.c.dedupe_key == dedupe_key, alerts.c.state != "resolved")
            .values(state="resolved", resolved_by=actor, resolved_at=at)
            .returning(alerts.c.id)
        )
        return [r.id for r in rows]
