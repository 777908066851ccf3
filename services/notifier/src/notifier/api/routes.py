"""notifier HTTP API: the recorded events, the alerts with their deliveries (newest
first), acknowledging alerts, and the subscriptions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from notifier.adapters.deliveries import DeliveryRepository
from notifier.adapters.repository import AlertRepository, EventLog
from notifier.api.roles import AlertsAcker
from notifier.api.schemas import AlertOut, DeliveryOut, EventOut
from notifier.api.subscriptions import router as subscriptions_router
from notifier.domain.delivery import summarize
from oms_servicekit.auth import role_in_jwt_mode, sees_personal_data
from oms_servicekit.http import RuntimeDep
from oms_servicekit.personal_data import mask_personal_fields
from oms_servicekit.problems import Problem

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=500, description="How many, newest first")]
#: Events and alerts are order data: ``orders:read`` in jwt mode (open in dev mode).
READ = [Depends(role_in_jwt_mode("orders:read"))]
SeesPii = Annotated[bool, Depends(sees_personal_data("orders:read"))]


@router.get("/events", response_model=list[EventOut], tags=["events"])
async def list_events(
    runtime: RuntimeDep,
    pii: SeesPii,
    limit: Limit = 50,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    key: Annotated[str | None, Query(max_length=200)] = None,
) -> list[EventOut]:
    """Recorded events, newest first; empty filters are ignored. ``orders:read`` in jwt
    mode; customers' contact data and addresses in payloads masked unless the caller
    also holds ``customers:pii``."""
    async with runtime.uow() as uow:
        rows = await EventLog(uow.session).latest(limit=limit, event_type=event_type, key=key)
    out = [EventOut(**{k: r[k] for k in EventOut.model_fields}) for r in rows]
    if pii:
        return out
    return [e.model_copy(update={"payload": mask_personal_fields(e.payload)}) for e in out]


@router.get("/alerts", response_model=list[AlertOut], tags=["alerts"], dependencies=READ)
async def list_alerts(
    runtime: RuntimeDep,
    limit: Limit = 50,
    state: Literal["open", "acknowledged", "resolved"] | None = None,
    type: Annotated[
        str | None,
        Query(max_length=100, description="The cause (sla_breached) or event type (SlaBreached)"),
    ] = None,
    since: Annotated[datetime | None, Query(description="Raised at or after (ISO 8601)")] = None,
) -> list[AlertOut]:
    """Alerts, newest first, each with its deliveries and their state together."""
    if since is not None and since.tzinfo is None:
        raise Problem(422, "since needs a time zone (e.g. 2026-11-11T00:00:00Z)", field="since")
    async with runtime.uow() as uow:
        rows = await AlertRepository(uow.session).latest(
            limit=limit, state=state, alert_type=type or None, since=since
        )
        sent = await DeliveryRepository(uow.session).of_alerts([r["id"] for r in rows])
    return [alert_out(r, sent[r["id"]]) for r in rows]


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertOut,
    tags=["alerts"],
    responses={
        400: {"description": "invalid X-Operator"},
        401: {"description": "no X-Operator header (dev) or no valid token (jwt)"},
        403: {"description": "the caller lacks alerts:ack"},
        404: {"description": "no such alert"},
        409: {"description": "the alert is resolved"},
    },
)
async def acknowledge_alert(
    alert_id: uuid.UUID, runtime: RuntimeDep, operator: AlertsAcker
) -> AlertOut:
    """Acknowledge an open alert as the operator (audited). Acknowledging it again
    changes nothing; a resolved alert cannot be acknowledged (409)."""
    async with runtime.uow() as uow:
        repo = AlertRepository(uow.session)
        row = await repo.get(alert_id, for_update=True)
        if row is None:
            raise Problem(404, "no such alert", field="alert_id")
        if row["state"] == "resolved":
            raise Problem(409, "the alert is already resolved", field="alert_id")
        if row["state"] == "open":
            await repo.acknowledge(alert_id, operator=operator, at=datetime.now(UTC))
            row = await repo.get(alert_id)
            assert row is not None
        sent = await DeliveryRepository(uow.session).of_alerts([alert_id])
        await uow.commit()
    return alert_out(row, sent[alert_id])


def alert_out(row: dict[str, Any], deliveries: list[dict[str, Any]]) -> AlertOut:
    fields = {k: row[k] for k in AlertOut.model_fields if k in row}
    return AlertOut(
        **fields,
        deliveries=[DeliveryOut(**d) for d in deliveries],
        delivery_state=summarize([d["state"] for d in deliveries]),
    )


router.include_router(subscriptions_router)
