"""Incident alerts: one alert that counts the orders a cause affects while it lasts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

#: Counts one more order into an incident (its row locked by the subquery), message too.
_JOIN = """
UPDATE alerts SET
    details = details || jsonb_build_object(
        'orders_affected', COALESCE((details ->> 'orders_affected')::int, 0) + 1,
        'last_order_id', CAST(:order_id AS text)),
    message = replace(replace(CAST(:template AS text), '{n}',
        (COALESCE((details ->> 'orders_affected')::int, 0) + 1)::text),
        '{since}', COALESCE(details ->> 'since', ''))
WHERE id = (
    SELECT id FROM alerts WHERE {where} ORDER BY raised_at DESC LIMIT 1 FOR UPDATE
)
RETURNING id
"""
_LIVE = _JOIN.replace("{where}", "dedupe_key = :key AND state <> 'resolved'")
# Subject first: an index leads there, and incidents are few among its alerts.
_CLOSED_SINCE = _JOIN.replace(
    "{where}",
    "subject = :subject AND dedupe_key = :key AND state = 'resolved' AND resolved_at >= :at",
)


class IncidentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def join(
        self,
        dedupe_key: str,
        *,
        subject: str,
        order_id: uuid.UUID,
        at: datetime,
        template: str,
    ) -> uuid.UUID | None:
        """Count ``order_id`` (affected at ``at``) into the incident of ``dedupe_key``: the
        live one, else the last one closed at or after ``at`` (its end reached us before
        this order did). None when there is neither: the order opens a new incident.

        ``template`` is the new message, ``{n}`` standing for the count, ``{since}`` for
        the incident's start."""
        values = {
            "key": dedupe_key,
            "subject": subject,
            "order_id": str(order_id),
            "at": at,
            "template": template,
        }
        for statement in (_LIVE, _CLOSED_SINCE):
            row = (await self._session.execute(text(statement), values)).first()
            if row is not None:
                return row.id  # type: ignore[no-any-return]
        return None
