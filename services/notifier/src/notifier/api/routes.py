"""notifier HTTP API: the recorded events and the alerts, newest first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from notifier.adapters.repository import AlertRepository, EventLog
from notifier.api.schemas import AlertOut, EventOut
from oms_servicekit.http import RuntimeDep

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=500, description="How many, newest first")]


@router.get("/events", response_model=list[EventOut], tags=["events"])
async def list_events(
    runtime: RuntimeDep,
    limit: Limit = 50,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    key: Annotated[str | None, Query(max_length=200)] = None,
) -> list[EventOut]:
    """Recorded events, newest first; empty filters are ignored."""
    async with runtime.uow() as uow:
        rows = await EventLog(uow.session).latest(limit=limit, event_type=event_type, key=key)
    return [EventOut(**{k: r[k] for k in EventOut.model_fields}) for r in rows]


@router.get("/alerts", response_model=list[AlertOut], tags=["alerts"])
async def list_alerts(
    runtime: RuntimeDep,
    limit: Limit = 50,
    state: Literal["open", "acknowledged", "resolved"] | None = None,
) -> list[AlertOut]:
    """Alerts, newest first."""
    async with runtime.uow() as uow:
        rows = await AlertRepository(uow.session).latest(limit=limit, state=state)
    return [AlertOut(**{k: r[k] for k in AlertOut.model_fields}) for r in rows]
