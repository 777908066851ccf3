"""SLA over HTTP: the running clocks (for the board) and the time-in-stage report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem
from order_svc.adapters.sla_store import SlaRepository
from order_svc.api.roles import ORDERS_READ
from order_svc.api.sla_schemas import OpenSlaItem, OpenSlaPage, SlaReport, SlaStageStats
from order_svc.domain.sla import Deadline

router = APIRouter(tags=["sla"])

#: The longest window one report may cover.
MAX_REPORT_WINDOW = timedelta(days=366)


@router.get("/sla/open", response_model=OpenSlaPage, dependencies=ORDERS_READ)
async def open_clocks(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    channel: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    stage: Literal["review", "ship"] | None = None,
) -> OpenSlaPage:
    """Orders still in an SLA stage, the closest to (or furthest past) the deadline first."""
    now = datetime.now(UTC)
    async with runtime.uow() as uow:
        rows, total = await SlaRepository(uow.session).open_page(
            channel=channel, stage=stage, limit=limit, offset=offset
        )
    return OpenSlaPage(
        items=[_open_item(row, now) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
        as_of=now,
    )


def _open_item(row: dict[str, Any], now: datetime) -> OpenSlaItem:
    deadline = Deadline(row["stage"], row["started_at"], row["deadline_at"])
    return OpenSlaItem(
        order_id=row["order_id"],
        channel_order_id=row["channel_order_id"],
        channel=row["channel"],
        order_class=row["order_class"],
        stage=row["stage"],
        state=row["state"],
        started_at=row["started_at"],
        deadline=row["deadline_at"],
        seconds_left=round(deadline.seconds_left(now), 3),
        at_risk=now >= deadline.at_risk_at,
        breached=now >= deadline.deadline_at,
    )


@router.get("/reports/sla", response_model=SlaReport, dependencies=ORDERS_READ)
async def sla_report(
    runtime: RuntimeDep,
    from_: Annotated[
        datetime | None, Query(alias="from", description="window start (default: to - 24 h)")
    ] = None,
    to: Annotated[datetime | None, Query(description="window end (default: now)")] = None,
) -> SlaReport:
    """Per stage, channel and class: count, mean, p50, p95 of time in stage, breach rate.

    Stays count in the window they started in; only finished stays have a time.
    """
    now = datetime.now(UTC)
    for name, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise Problem(422, f"{name} needs a time zone (e.g. Z)", field=name)
        if value is not None:
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise Problem(422, f"{name} is out of range", field=name) from None
    end = to or now
    if from_ is None and end - datetime.min.replace(tzinfo=UTC) < timedelta(hours=24):
        # The default window would start before the first representable instant.
        raise Problem(422, "to is too early for the default 24 h window; give from", field="to")
    start = from_ or end - timedelta(hours=24)
    if start >= end:
        raise Problem(422, "from must be before to", field="from")
    if end - start > MAX_REPORT_WINDOW:
        raise Problem(422, "the window may span at most 366 days", field="from")
    async with runtime.uow() as uow:
        rows = await SlaRepository(uow.session).report(start, end, now)
    return SlaReport(from_=start, to=end, stages=[_stats(row) for row in rows])


def _stats(row: dict[str, Any]) -> SlaStageStats:
    is_sla = row["kind"] == "sla"
    decided = int(row["decided"])
    breached = int(row["breached"])
    return SlaStageStats(
        kind=row["kind"],
        stage=row["stage"],
        channel=row["channel"],
        order_class=row["order_class"],
        count=int(row["count"]),
        mean_s=_num(row["mean_s"]),
        p50_s=_num(row["p50_s"]),
        p95_s=_num(row["p95_s"]),
        breached=breached if is_sla else None,
        breach_rate=(round(breached / decided, 4) if decided else None) if is_sla else None,
    )


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
