"""What a service is, as far as the launcher cares, and the five services of the OMS.

The table is data rather than code so that tests can hand the `Stack` stand-in services
(and so that adding a sixth service is a one-line change).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service and how the others find it.

    ``url_env`` names the variable through which *every* service learns this one's base URL;
    ``port_env`` is the variable a developer may set to move it off its default port in
    ``make run``; ``links`` are the paths worth printing for a human (docs, event views).
    """

    name: str
    module: str
    port: int
    db_name: str
    url_env: str
    port_env: str | None = None
    ready_path: str = "/readyz"
    links: tuple[str, ...] = field(default=("/docs",))

    def with_port(self, port: int) -> ServiceSpec:
        """A copy on another port (test stacks and env overrides)."""
        return replace(self, port=port)

    def with_db_name(self, db_name: str) -> ServiceSpec:
        """A copy using another database (test stacks use throwaway names)."""
        return replace(self, db_name=db_name)


ORDER_SVC = ServiceSpec(
    name="order-svc",
    module="order_svc",
    port=8001,
    db_name="oms_order",
    url_env="ORDER_SVC_URL",
    port_env="ORDER_SVC_PORT",
)
INVENTORY_SVC = ServiceSpec(
    name="inventory-svc",
    module="inventory_svc",
    port=8002,
    db_name="oms_inventory",
    url_env="INVENTORY_SVC_URL",
    port_env="INVENTORY_SVC_PORT",
)
CUSTOMER_SVC = ServiceSpec(
    name="customer-svc",
    module="customer_svc",
    port=8003,
    db_name="oms_customer",
    url_env="CUSTOMER_SVC_URL",
    port_env="CUSTOMER_SVC_PORT",
)
CHANNEL_GATEWAY = ServiceSpec(
    name="channel-gateway",
    module="channel_gateway",
    port=8004,
    db_name="oms_gateway",
    url_env="GATEWAY_URL",
    port_env="GATEWAY_PORT",
)
NOTIFIER = ServiceSpec(
    name="notifier",
    module="notifier",
    port=8005,
    db_name="oms_notifier",
    url_env="NOTIFIER_URL",
    port_env="NOTIFIER_PORT",
    links=("/docs", "/events", "/board"),
)

#: The OMS services in start-up/print order. They do not depend on each other at start-up.
DEFAULT_SERVICES: tuple[ServiceSpec, ...] = (
    ORDER_SVC,
    INVENTORY_SVC,
    CUSTOMER_SVC,
    CHANNEL_GATEWAY,
    NOTIFIER,
)

#: The fake credit bureau (oms_devstack.fakes.credit_bureau). Not in DEFAULT_SERVICES: a
#: stack that wants it adds it (``services=(*DEFAULT_SERVICES, FAKE_CREDIT_BUREAU)``) and
#: points order-svc at it with ``CREDIT_CHECK_URL=<its url>/credit/check``. It has no
#: database; ``db_name`` is never created (dropping it is a no-op).
FAKE_CREDIT_BUREAU = ServiceSpec(
    name="credit-bureau",
    module="oms_devstack.fakes.credit_bureau",
    port=8006,
    db_name="oms_fake_credit_bureau",
    url_env="CREDIT_BUREAU_URL",
    port_env="CREDIT_BUREAU_PORT",
    links=("/control",),
)
