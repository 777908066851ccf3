"""The composition root of channel-gateway: settings -> runtime -> app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from channel_gateway.adapters.channel_cache import ChannelCache
from channel_gateway.adapters.channel_events import ChannelChangeListener
from channel_gateway.api.roles import ADMIN_ROLE
from channel_gateway.api.routes import build_router
from channel_gateway.pull import PullScheduler
from channel_gateway.settings import GatewaySettings
from oms_servicekit.audit import audit_router
from oms_servicekit.http import create_app
from oms_servicekit.runtime import PeriodicJob, ServiceRuntime
from oms_servicekit.serve import serve

SERVICE = "channel-gateway"
MIGRATIONS = Path(__file__).parent / "migrations"


class GatewayRuntime(ServiceRuntime):
    """The service runtime plus the listener that keeps the channel cache honest: it
    starts once the database is migrated (the triggers exist) and stops first."""

    def __init__(self, settings: GatewaySettings, listener: ChannelChangeListener, **kw: Any):
        super().__init__(settings, **kw)
        self._listener = listener

    async def start(self) -> None:
        await super().start()
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()
        await super().stop()


def build_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    jobs: list[PeriodicJob] = []
    cache = ChannelCache(settings.channel_cache_ttl_s)
    listener = ChannelChangeListener(
        settings.server_dsn(settings.db_name), cache, ping_s=settings.channel_listener_ping_s
    )
    runtime = GatewayRuntime(
        settings, listener, service_name=SERVICE, migrations_dir=MIGRATIONS, periodic_jobs=jobs
    )
    scheduler = PullScheduler(runtime.uow, policy=settings.outbound_policy())
    # One replica pulls at a time: the cursor is durable, but two pullers would fetch
    # every page twice.
    jobs.append(
        PeriodicJob("pull-connectors", settings.pull_tick_s, scheduler.tick, exclusive=True)
    )
    return create_app(
        title=SERVICE,
        runtime=runtime,
        routers=[build_router(settings, cache), audit_router(ADMIN_ROLE)],
        # Webhooks enforce their own per-channel limit (and audit the refusal); imports
        # stream files far above the general cap, row by row.
        body_limit_exempt=("/webhooks/", "/imports/"),
    )


def main() -> None:
    settings = GatewaySettings()
    serve(build_app(settings), settings, SERVICE)
