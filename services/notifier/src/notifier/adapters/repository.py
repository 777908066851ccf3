"""Notifier persistence: the event log (which is also the consumer's inbox) and the alerts
(an acknowledgement writes its audit-trail row here, in the caller's transaction)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.adapters.tables import alerts, events
from notifier.domain.rules import AlertSpec
from oms_contracts import Envelope
from oms_messaging import UnitOfWork
from oms_servicekit.audit import record_audit

#: A whole transaction's events in one statement (one array per column, in arrival
#: order so ``seq`` keeps it); a constant text, so it is built and prepared once.
_RECORD_MANY = text(
    "INSERT INTO events (event_id, event_type, schema_version, key, producer,"
    " correlation_id, causation_id, occurred_at, payload)"
    " SELECT v.event_id, v.event_type, v.schema_version, v.key, v.producer,"
    " v.correlation_id, v.causation_id, v.occurred_at, v.payload::jsonb"
    " FROM unnest(CAST(:event_id AS uuid[]), CAST(:event_type AS text[]),"
    " CAST(:schema_version AS int[]), CAST(:key AS text[]), CAST(:producer AS text[]),"
    " CAST(:correlation_id AS text[]), CAST(:causation_id AS text[]),"
    " CAST(:occurred_at AS timestamptz[]), CAST(:payload AS text[]))"
    " WITH ORDINALITY AS v(event_id, event_type, schema_version, key, producer,"
    " correlation_id, causation_id, occurred_at, payload, n)"
    " ORDER BY v.n"
    " ON CONFLICT (event_id) DO NOTHING"
    " RETURNING event_id"
)


class EventLog:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record_many(self, envelopes: Iterable[Envelope]) -> set[uuid.UUID]:
        """Store the envelopes whose ids are not stored yet, in one statement; their ids."""
        batch = list(envelopes)
        if not batch:
            return set()
        result = await self._session.execute(
            _RECORD_MANY,
            {
                "event_id": [e.event_id for e in batch],
                "event_type": [e.event_type for e in batch],
                "schema_version": [e.schema_version for e in batch],
                "key": [e.key for e in batch],
                "producer": [e.producer for e in batch],
                "correlation_id": [e.correlation_id for e in batch],
                "causation_id": [e.causation_id for e in batch],
                "occurred_at": [e.occurred_at for e in batch],
                "payload": [json.dumps(e.payload) for e in batch],
            },
        )
        return {row[0] for row in result}

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


class EventLogInbox:
    """notifier's inbox is its event log: one row per event id, whichever consumer read
    it. Recording an event in the log *is* admitting it, so each event costs one row, not
    a log row and an inbox row (``oms_messaging.inbox``). A replay under another consumer
    name finds the events logged and changes nothing, as the log holds each event once."""

    async def admit(
        self, uow: UnitOfWork, consumer: str, envelopes: Sequence[Envelope]
    ) -> set[uuid.UUID]:
        return await EventLog(uow.session).record_many(envelopes)


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
