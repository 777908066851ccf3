"""Run a service's app under uvicorn with the shared logging."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from oms_servicekit.logging import configure_logging
from oms_servicekit.settings import ServiceSettings
from oms_servicekit.tracing import configure_tracing


def serve(app: FastAPI, settings: ServiceSettings, service_name: str) -> None:
    """Run the app, its consumers and relay on one event loop.

    uvicorn's ``auto`` loop and HTTP parser take uvloop and httptools, which servicekit
    installs: every service spends much of its time in socket writes and request parsing,
    and the C versions of both are what let two cores carry a promotion day.
    """
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
