"""The composition root of order-svc: settings -> runtime -> app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from oms_servicekit.http import create_app
from oms_servicekit.runtime import ServiceRuntime
from oms_servicekit.serve import serve
from order_svc.api.routes import router
from order_svc.handlers import consumer_specs
from order_svc.settings import OrderSettings

SERVICE = "order-svc"
MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: OrderSettings | None = None) -> FastAPI:
    settings = settings or OrderSettings()
    runtime = ServiceRuntime(
        settings, service_name=SERVICE, migrations_dir=MIGRATIONS, consumers=consumer_specs()
    )
    return create_app(title=SERVICE, runtime=runtime, routers=[router])


def main() -> None:
    settings = OrderSettings()
    serve(build_app(settings), settings, SERVICE)
