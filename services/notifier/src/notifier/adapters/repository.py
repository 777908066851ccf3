"""Notifier persistence: the event log and the alerts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.adapters.tables import alerts, events
from oms_contracts import Envelope
from oms_contracts.events import AlertRaised


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

    async def add(self, alert: AlertRaised, *, source: str) -> bool:
        """Store ``alert`` as open unless its id is stored; True if stored now."""
        result = await self._session.execute(
            pg_insert(alerts)
            .values(
                id=alert.alert_id,
                alert_type=alert.alert_type,
                severity=alert.severity,
                subject=alert.subject,
                message=alert.message,
                details=alert.model_dump(mode="json")["details"],
                source=source,
                raised_at=alert.raised_at,
                state="open",
            )
            .on_conflict_do_nothing(index_elements=[alerts.c.id])
            .returning(alerts.c.id)
        )
        return result.first() is not None

    async def latest(self, *, limit: int, state: str | None = None) -> list[dict[str, Any]]:
        query = select(alerts).order_by(alerts.c.raised_at.desc(), alerts.c.id).limit(limit)
        if state:
            query = query.where(alerts.c.state == state)
        return [dict(r._mapping) for r in await self._session.execute(query)]
