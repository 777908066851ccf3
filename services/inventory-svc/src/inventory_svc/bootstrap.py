"""The composition root of inventory-svc: settings -> runtime -> app. Nothing connects
until the app starts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from inventory_svc.api.forecast_routes import router as forecast_router
from inventory_svc.api.reservation_routes import router as reservation_router
from inventory_svc.api.roles import ADJUST_ROLE
from inventory_svc.api.routes import router
from inventory_svc.forecasting import nightly_refresh
from inventory_svc.handlers import (
    consumer_specs,
    purge_ledger,
    recompute_abc,
    sweep_expired,
    sync_class,
)
from inventory_svc.metrics import SCRAPE_QUERIES
from inventory_svc.settings import InventorySettings
from oms_messaging import UnitOfWork
from oms_servicekit.audit import audit_router
from oms_servicekit.http import create_app
from oms_servicekit.runtime import PeriodicJob, ServiceRuntime
from oms_servicekit.serve import serve

SERVICE = "inventory-svc"
MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()

    def uow() -> UnitOfWork:
        return runtime.uow()

    async def sweep() -> None:
        await sweep_expired(uow, settings.sweep_batch)

    async def purge() -> None:
        await purge_ledger(uow, settings.ledger_retention_days)

    async def abc() -> None:
        await recompute_abc(uow)

    async def sync_b() -> None:
        await sync_class(uow, "B")

    async def sync_c() -> None:
        await sync_class(uow, "C")

    async def forecasts() -> None:
        await nightly_refresh(uow)

    runtime = ServiceRuntime(
        settings,
        service_name=SERVICE,
        migrations_dir=MIGRATIONS,
        consumers=consumer_specs(timedelta(seconds=settings.reservation_ttl_s)),
        # One replica at a time for each job: two sweepers would race for the same
        # reservations, two nightly refits would double the CPU and the events.
        periodic_jobs=[
            PeriodicJob("reservation-sweeper", settings.sweep_interval_s, sweep, exclusive=True),
            PeriodicJob("ledger-purge", settings.ledger_purge_interval_s, purge, exclusive=True),
            PeriodicJob("abc-recompute", settings.abc_recompute_interval_s, abc, exclusive=True),
            PeriodicJob("channel-sync-b", settings.sync_b_interval_s, sync_b, exclusive=True),
            PeriodicJob("channel-sync-c", settings.sync_c_interval_s, sync_c, exclusive=True),
            PeriodicJob(
                "forecast-refresh",
                settings.forecast_refresh_interval_s,
                forecasts,
                exclusive=True,
            ),
        ],
    )
    return create_app(
        title=SERVICE,
        runtime=runtime,
        routers=[router, forecast_router, reservation_router, audit_router(ADJUST_ROLE)],
        metrics=SCRAPE_QUERIES,
    )


def main() -> None:
    settings = InventorySettings()
    serve(build_app(settings), settings, SERVICE)
