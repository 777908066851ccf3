"""The composition root of customer-svc: settings -> runtime -> app. Nothing connects
until the app starts."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from customer_svc.api.roles import PII_ROLE
from customer_svc.api.routes import router
from customer_svc.domain.identity import set_default_region
from customer_svc.handlers import consumer_specs
from customer_svc.settings import CustomerSettings
from oms_servicekit.audit import audit_router
from oms_servicekit.http import create_app
from oms_servicekit.runtime import ServiceRuntime
from oms_servicekit.serve import serve

SERVICE = "customer-svc"
MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: CustomerSettings | None = None) -> FastAPI:
    settings = settings or CustomerSettings()
    set_default_region(settings.default_phone_region)
    runtime = ServiceRuntime(
        settings,
        service_name=SERVICE,
        migrations_dir=MIGRATIONS,
        consumers=consumer_specs(),
    )
    # The trail names customers and operators: reading it needs the personal-data role.
    return create_app(title=SERVICE, runtime=runtime, routers=[router, audit_router(PII_ROLE)])


def main() -> None:
    settings = CustomerSettings()
    serve(build_app(settings), settings, SERVICE)
