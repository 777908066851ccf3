"""How a stack is configured: the `make run` defaults, or an isolated test stack.

A test stack must be able to run next to a developer's `make run` stack (and next to other
test stacks) without touching any of it: every port is a fresh free one, every database name
carries a random suffix, and it gets its own broker even when the developer's shell points
``KAFKA_BOOTSTRAP_SERVERS`` at a shared one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from oms_devstack.dburl import DEFAULT_DATABASE_URL
from oms_devstack.ports import free_ports
from oms_devstack.specs import DEFAULT_SERVICES, FAKE_CREDIT_BUREAU, ServiceSpec

DEFAULT_BROKER_PORT = 9092
#: The demo stack's shared secret between the fake bureau's callbacks and order-svc (local
#: development only; deployments set their own).
DEMO_CALLBACK_SECRET = "demo-credit-callback-secret"
#: The demo channels whose every order is credit-checked (the seeded ``distributor``);
#: the retail ones (web, app, live, tmall) skip the check for prepaid orders.
DEMO_CREDIT_CHANNELS = '["distributor"]'


def demo_credit_env(bureau_url: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """order-svc's credit settings on the demo stack: the fake bureau at ``bureau_url``,
    and the rule (distributor orders, credit terms and large amounts are checked), each
    overridable from the environment."""
    env = os.environ if environ is None else environ
    return {
        "CREDIT_CHECK_URL": env.get("CREDIT_CHECK_URL") or f"{bureau_url}/credit/check",
        "CREDIT_CALLBACK_SECRET": env.get("CREDIT_CALLBACK_SECRET") or DEMO_CALLBACK_SECRET,
        "CREDIT_CHECK_CHANNELS": env.get("CREDIT_CHECK_CHANNELS") or DEMO_CREDIT_CHANNELS,
    }


def oms_dir(root: Path) -> Path:
    """The launcher's scratch directory (``.oms``, git-ignored) under the repo root."""
    return root / ".oms"


@dataclass
class StackConfig:
    """Everything `Stack` needs to know; build it with `from_env` or `for_tests`."""

    #: Repo root (or any working directory); ``.oms/`` lives here and services run here.
    root: Path
    #: Where ``<service>.log`` and ``broker.log`` go.
    log_dir: Path
    services: tuple[ServiceSpec, ...] = DEFAULT_SERVICES
    #: The PostgreSQL server to use (a database name in it, if any, is ignored).
    database_url: str = DEFAULT_DATABASE_URL
    #: Start a private PostgreSQL when nothing answers at ``database_url``.
    allow_private_postgres: bool = True
    #: Where the private PostgreSQL keeps its data (default ``<root>/.oms/pg``).
    private_postgres_dir: Path | None = None
    #: Port for the private PostgreSQL (default: a free one).
    private_postgres_port: int | None = None
    #: An external broker to use instead of starting tansu (``host:port[,host:port]``).
    kafka_bootstrap: str | None = None
    broker_port: int = DEFAULT_BROKER_PORT
    log_level: str = "INFO"
    #: Extra environment for every service; wins over what the launcher computes.
    common_env: dict[str, str] = field(default_factory=dict)
    #: Extra environment per service name; wins over ``common_env``.
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    ready_timeout: float = 90.0
    stop_timeout: float = 30.0
    #: Let processes outlive the launcher (``run --detach``).
    detach: bool = False

    @property
    def pg_dir(self) -> Path:
        """Data location of the private PostgreSQL."""
        return self.private_postgres_dir or oms_dir(self.root) / "pg"

    @property
    def database_names(self) -> list[str]:
        """The databases the services will create (what `Stack.drop_databases` drops)."""
        return [spec.db_name for spec in self.services]

    @classmethod
    def from_env(
        cls, root: Path, environ: Mapping[str, str] | None = None, *, detach: bool = False
    ) -> StackConfig:
        """The `make run` stack: default ports and databases, overridable from the environment.

        Honoured: ``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS`` (external broker),
        ``OMS_BROKER_PORT``, ``OMS_PG_PORT``, ``LOG_LEVEL`` and each service's port variable
        (``ORDER_SVC_PORT``, ``INVENTORY_SVC_PORT``, ``CUSTOMER_SVC_PORT``, ``GATEWAY_PORT``,
        ``NOTIFIER_PORT``).
        """
        env = os.environ if environ is None else environ
        services = tuple(
            spec.with_port(int(env[spec.port_env]))
            if spec.port_env and env.get(spec.port_env)
            else spec
            for spec in (*DEFAULT_SERVICES, FAKE_CREDIT_BUREAU)
        )
        pg_port = env.get("OMS_PG_PORT")
        bureau = next(spec for spec in services if spec.name == FAKE_CREDIT_BUREAU.name)
        # The demo stack checks credit against the fake bureau, which answers "approved"
        # at once until told otherwise on its /control endpoint.
        service_env = {
            "order-svc": demo_credit_env(f"http://127.0.0.1:{bureau.port}", env),
            bureau.name: {"CREDIT_CALLBACK_SECRET": DEMO_CALLBACK_SECRET},
        }
        return cls(
            root=root,
            log_dir=oms_dir(root) / "logs",
            services=services,
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            private_postgres_port=int(pg_port) if pg_port else None,
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            broker_port=int(env.get("OMS_BROKER_PORT") or DEFAULT_BROKER_PORT),
            log_level=env.get("LOG_LEVEL") or "INFO",
            service_env=service_env,
            detach=detach,
        )

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
    ) -> StackConfig:
        """An isolated stack: free ports, ``<db>_t<hex>`` databases, its own broker.

        ``database_url`` defaults to ``$DATABASE_URL`` (or the local default): sharing the
        server is safe because the database names are unique. ``kafka_bootstrap`` is *not*
        taken from the environment on purpose; pass it to share a broker.
        """
        specs = list(services)
        ports = free_ports(len(specs) + 1)
        suffix = f"_t{secrets.token_hex(4)}"
        specs = [
            spec.with_port(port).with_db_name(spec.db_name + suffix)
            for spec, port in zip(specs, ports[1:], strict=True)
        ]
        return cls(
            root=root or Path.cwd(),
            log_dir=log_dir,
            services=tuple(specs),
            database_url=database_url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            private_postgres_dir=private_postgres_dir,
            kafka_bootstrap=kafka_bootstrap,
            broker_port=ports[0],
            log_level=log_level,
            common_env=dict(common_env or {}),
            service_env={name: dict(env) for name, env in (service_env or {}).items()},
            ready_timeout=ready_timeout,
            stop_timeout=stop_timeout,
        )
