"""The whole local stack: PostgreSQL, the broker and the services, started and stopped in order.

A library first: the end-to-end tests build a `Stack` (usually with `Stack.for_tests`),
``await stack.start()``, talk to ``stack.url(...)``, kill and restart single services in
fault drills, and finally ``await stack.stop(drop_databases=True)``. The CLI is a thin layer
over the same object.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from oms_devstack import postgres
from oms_devstack.broker import Broker
from oms_devstack.config import StackConfig
from oms_devstack.dburl import redacted, server_url
from oms_devstack.errors import DevstackError, PortInUseError, PostgresUnavailableError
from oms_devstack.ports import LOCALHOST, port_is_free
from oms_devstack.postgres import PrivatePostgres, prefer_local_socket, probe
from oms_devstack.service import ServiceProcess, http_client, is_ready
from oms_devstack.specs import DEFAULT_SERVICES, ServiceSpec


class Stack:
    """PostgreSQL (configured or private), a broker (tansu or external) and the services."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig.from_env(Path.cwd())
        names = [spec.name for spec in self.config.services]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique: {names}")
        self._specs = {spec.name: spec for spec in self.config.services}
        self._services: dict[str, ServiceProcess] = {}
        self._broker: Broker | None = None
        self._private_pg: PrivatePostgres | None = None
        self._database_url: str | None = None
        self._started = False

    @classmethod
    def for_tests(
        cls,
        log_dir: Path,
        *,
        root: Path | None = None,
        services: Iterable[ServiceSpec] = DEFAULT_SERVICES,
        database_url: str | None = None,
        kafka_bootstrap: str | None = None,
        private_postgres_dir: Path | None = None,
        common_env: Mapping[str, str] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        log_level: str = "INFO",
        ready_timeout: float = 90.0,
        stop_timeout: float = 30.0,
    ) -> Stack:
        """An isolated stack (see `StackConfig.for_tests`)."""
        return cls(
            StackConfig.for_tests(
                log_dir,
                root=root,
                services=services,
                database_url=database_url,
                kafka_bootstrap=kafka_bootstrap,
                private_postgres_dir=private_postgres_dir,
                common_env=common_env,
                service_env=service_env,
                log_level=log_level,
                ready_timeout=ready_timeout,
                stop_timeout=stop_timeout,
            )
        )

    # -- what the stack is -----------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Service names, in configuration order."""
        return list(self._specs)

    @property
    def database_url(self) -> str:
        """Server URL the services use (private server's URL if one was started)."""
        if self._database_url is None:
            raise DevstackError("the stack has not been started")
        return self._database_url

    @property
    def kafka_bootstrap(self) -> str:
        """``KAFKA_BOOTSTRAP_SERVERS`` of the broker in use."""
        if self.config.kafka_bootstrap:
            return self.config.kafka_bootstrap
        return f"{LOCALHOST}:{self.config.broker_port}"

    @property
    def broker_is_private(self) -> bool:
        """True when this stack runs its own tansu (no external broker configured)."""
        return not self.config.kafka_bootstrap

    @property
    def private_postgres(self) -> PrivatePostgres | None:
        """The private PostgreSQL in use, if the configured server did not answer."""
        return self._private_pg

    @property
    def broker(self) -> Broker | None:
        """The private broker process, if any."""
        return self._broker

    def spec(self, name: str) -> ServiceSpec:
        """The spec of service ``name`` (ports and database names of a test stack)."""
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown service {name!r}; known: {', '.join(self._specs)}") from None

    def port(self, name: str) -> int:
        return self.spec(name).port

    def url(self, name: str) -> str:
        """Base URL of a service, e.g. ``http://127.0.0.1:8001``."""
        return f"http://{LOCALHOST}:{self.port(name)}"

    @property
    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in self._specs}

    def db_name(self, name: str) -> str:
        return self.spec(name).db_name

    def log_path(self, name: str) -> Path:
        return self.config.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """Pid of a running service, else None."""
        service = self._service(name)
        return service.pid if service else None

    def is_running(self, name: str) -> bool:
        """True while the service's process is alive (ready or not)."""
        service = self._service(name)
        return service is not None and service.running

    def env_for(self, name: str) -> dict[str, str]:
        """The full environment service ``name`` is started with."""
        spec = self.spec(name)
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "DB_NAME": spec.db_name,
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
                "HOST": LOCALHOST,
                "PORT": str(spec.port),
                "LOG_LEVEL": self.config.log_level,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({other.url_env: self.url(other.name) for other in self._specs.values()})
        env.update(self.config.common_env)
        env.update(self.config.service_env.get(name, {}))
        return env

    def _service(self, name: str) -> ServiceProcess | None:
        self.spec(name)  # unknown names fail loudly
        return self._services.get(name)

    # -- whole-stack life cycle ------------------------------------------------------------

    def check_ports_free(self) -> None:
        """Fail with one clear line when a port this stack needs is taken."""
        wanted = [(spec.port, spec.name, spec.port_env) for spec in self._specs.values()]
        if self.broker_is_private:
            wanted.insert(0, (self.config.broker_port, "broker", "OMS_BROKER_PORT"))
        for port, owner, env_var in wanted:
            if not port_is_free(port):
                move = f", or set {env_var} to another port" if env_var else ""
                raise PortInUseError(
                    f"port {port} ({owner}) is already in use on {LOCALHOST}: is a stack "
                    f"already running? (python -m oms_devstack status / stop{move})"
                )

    async def start(self) -> None:
        """Start PostgreSQL if needed, the broker, then all services concurrently.

        Returns once every service answers ``/readyz``. On any failure everything already
        started is stopped again before the error propagates.
        """
        if self._started:
            return
        self.check_ports_free()
        self._started = True
        try:
            await self.start_database()
            await self.start_broker()
            results = await asyncio.gather(
                *(self.start_service(name) for name in self._specs), return_exceptions=True
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise errors[0]
        except BaseException:
            await self.stop()
            raise

    async def stop(self, *, drop_databases: bool = False) -> None:
        """Stop services (SIGTERM, then SIGKILL after the stop timeout), broker, PostgreSQL.

        Idempotent. With ``drop_databases`` the stack's databases are dropped after the
        services stopped and before a private PostgreSQL goes down.
        """
        try:
            await asyncio.gather(
                *(service.stop(self.config.stop_timeout) for service in self._services.values()),
                return_exceptions=True,
            )
            if self._broker is not None:
                await self._broker.stop()
                self._broker = None
            if drop_databases and self._database_url is not None:
                await postgres.drop_databases(self._database_url, self.config.database_names)
        finally:  # whatever failed above, never leave a private server behind
            if self._private_pg is not None:
                await self._private_pg.stop()
            self._started = False

    async def drop_databases(self) -> None:
        """Drop this stack's databases (meant for after `stop`).

        A private PostgreSQL that `stop` shut down is started again just for this, so that
        throwaway databases do not pile up in ``.oms/pg``.
        """
        if self._database_url is None:
            return
        pg = self._private_pg
        restarted = pg is not None and not pg.started and not await probe(self._database_url)
        if restarted and pg is not None:
            await pg.start(self.config.database_url)
        try:
            await postgres.drop_databases(self._database_url, self.config.database_names)
        finally:
            if restarted and pg is not None:
                await pg.stop()

    async def readiness(self) -> dict[str, bool]:
        """``/readyz`` of every service, right now."""
        async with http_client(timeout=2.0) as client:
            checks = [is_ready(client, self.url(n) + self.spec(n).ready_path) for n in self._specs]
            return dict(zip(self._specs, await asyncio.gather(*checks), strict=True))

    async def __aenter__(self) -> Stack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- the parts -------------------------------------------------------------------------

    async def start_database(self) -> None:
        """Use the configured server if it answers, else start the private one."""
        if self._private_pg is not None:  # again after `stop`: same data, same port
            if not self._private_pg.started:
                await self._private_pg.start(self.config.database_url)
            return
        if self._database_url is not None:
            return
        url = server_url(self.config.database_url)
        if await probe(url):
            self._database_url = await prefer_local_socket(url)
            return
        if not self.config.allow_private_postgres:
            raise PostgresUnavailableError(
                f"no PostgreSQL answers at {redacted(url)}; "
                "set DATABASE_URL to a reachable PostgreSQL server"
            )
        pg = self._private_pg or PrivatePostgres(
            self.config.pg_dir, self.config.private_postgres_port
        )
        await pg.start(url)
        self._private_pg = pg
        self._database_url = await prefer_local_socket(pg.url)

    async def start_broker(self) -> None:
        """Start tansu unless an external broker is configured."""
        if not self.broker_is_private or self._broker is not None:
            return
        broker = Broker(
            self.config.broker_port, self.config.log_dir / "broker.log", detach=self.config.detach
        )
        await broker.start()
        self._broker = broker

    # -- single services (fault drills) ----------------------------------------------------

    async def start_service(self, name: str, timeout_s: float | None = None) -> None:
        """(Re)start one service and wait until it is ready; no-op wait if it is running."""
        spec = self.spec(name)
        service = self._services.get(name)
        if service is None or not service.running:
            service = ServiceProcess(
                spec,
                env=self.env_for(name),
                log_path=self.log_path(name),
                cwd=self.config.root,
                detach=self.config.detach,
            )
            self._services[name] = service
            await service.start(timeout_s or self.config.ready_timeout)
        else:
            await service.wait_ready(timeout_s or self.config.ready_timeout)

    async def stop_service(self, name: str, timeout_s: float | None = None) -> int | None:
        """Stop one service gracefully (SIGTERM, SIGKILL after the timeout); its exit code."""
        service = self._service(name)
        if service is None:
            return None
        return await service.stop(self.config.stop_timeout if timeout_s is None else timeout_s)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a service without waiting (``kill -9`` by default)."""
        service = self._service(name)
        if service is not None:
            service.kill(sig)

    async def wait_exit(self, name: str, timeout_s: float = 30.0) -> int | None:
        """Wait until a service's process is gone; its exit code, or None on timeout."""
        service = self._service(name)
        return None if service is None else await service.wait_exit(timeout_s)

    async def restart_service(self, name: str, timeout_s: float | None = None) -> None:
        """Graceful stop, then start and wait until ready."""
        await self.stop_service(name)
        await self.start_service(name, timeout_s)
