"""The composition root of notifier: settings -> runtime -> app. Nothing connects until
the app starts."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from notifier.api.board import board_router
from notifier.api.roles import ALERTS_ROLE
from notifier.api.routes import router
from notifier.delivery_worker import alerting_config, delivery_job, target_policy
from notifier.handlers import SERVICE, consumer_specs
from notifier.settings import NotifierSettings
from oms_messaging import UnitOfWork
from oms_servicekit.audit import audit_router
from oms_servicekit.http import create_app
from oms_servicekit.runtime import ServiceRuntime
from oms_servicekit.serve import serve

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings()

    def uow() -> UnitOfWork:
        return runtime.uow()

    runtime = ServiceRuntime(
        settings,
        service_name=SERVICE,
        migrations_dir=MIGRATIONS,
        consumers=consumer_specs(alerting_config(settings)),
        periodic_jobs=[delivery_job(settings, uow)],
    )
    app = create_app(
        title=SERVICE,
        runtime=runtime,
        routers=[router, board_router(settings), audit_router(ALERTS_ROLE)],
    )
    app.state.target_policy = target_policy(settings)
    return app


def main() -> None:
    settings = NotifierSettings()
    serve(build_app(settings), settings, SERVICE)
