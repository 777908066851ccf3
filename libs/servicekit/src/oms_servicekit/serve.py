"""Run a service's app under uvicorn with the shared logging."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from oms_servicekit.logging import configure_logging
from oms_servicekit.settings import ServiceSettings
from oms_servicekit.tracing import configure_tracing


def serve(app: FastAPI, settings: ServiceSettings, service_name: str) -> None:
    configure_logging(service_name, settings.log_level)
    configure_tracing(service_name)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
    )
