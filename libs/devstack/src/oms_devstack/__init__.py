"""Local stack launcher for the OMS: PostgreSQL, the tansu broker and the five services.

Used by ``make run`` (``python -m oms_devstack run``) and, as a library, by the end-to-end
tests (``Stack.for_tests(...)``), which need isolated stacks on free ports.
"""

from oms_devstack.config import StackConfig
from oms_devstack.errors import (
    BrokerStartError,
    DevstackError,
    PortInUseError,
    PostgresUnavailableError,
    SeedError,
    ServiceStartError,
)
from oms_devstack.ports import free_port, free_ports, port_is_free
from oms_devstack.postgres import PrivatePostgres, drop_databases, probe
from oms_devstack.seed import SeedReport, seed_demo
from oms_devstack.signing import SIGNATURE_HEADER, demo_order, signature
from oms_devstack.specs import DEFAULT_SERVICES, ServiceSpec
from oms_devstack.stack import Stack

__all__ = [
    "DEFAULT_SERVICES",
    "SIGNATURE_HEADER",
    "BrokerStartError",
    "DevstackError",
    "PortInUseError",
    "PostgresUnavailableError",
    "PrivatePostgres",
    "SeedError",
    "SeedReport",
    "ServiceSpec",
    "ServiceStartError",
    "Stack",
    "StackConfig",
    "demo_order",
    "drop_databases",
    "free_port",
    "free_ports",
    "port_is_free",
    "probe",
    "seed_demo",
    "signature",
]
