"""The composition root of inventory-svc: settings -> runtime -> app. Nothing connects
until the app starts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from inventory_svc.api.routes import router
from inventory_svc.handlers import consumer_specs
from inventory_svc.settings import InventorySettings
from oms_servicekit.http import create_app
from oms_servicekit.runtime import ServiceRuntime
from oms_servicekit.serve import serve

SERVICE = "inventory-svc"
MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()
    runtime = ServiceRuntime(
        settings,
        service_name=SERVICE,
        migrations_dir=MIGRATIONS,
        consumers=consumer_specs(timedelta(seconds=settings.reservation_ttl_s)),
    )
    return create_app(title=SERVICE, runtime=runtime, routers=[router])


def main() -> None:
    settings = InventorySettings()
    serve(build_app(settings), settings, SERVICE)
