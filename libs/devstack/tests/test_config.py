"""Configuration: `make run` defaults and env overrides, and test-stack isolation."""

from __future__ import annotations

from pathlib import Path

from oms_devstack import DEFAULT_SERVICES, StackConfig
from oms_devstack.dburl import redacted, server_url, with_database


def test_make_run_defaults(tmp_path: Path) -> None:
    config = StackConfig.from_env(tmp_path, {})
    assert [(s.name, s.module, s.port, s.db_name) for s in config.services] == [
        ("order-svc", "order_svc", 8001, "oms_order"),
        ("inventory-svc", "inventory_svc", 8002, "oms_inventory"),
        ("customer-svc", "customer_svc", 8003, "oms_customer"),
        ("channel-gateway", "channel_gateway", 8004, "oms_gateway"),
        ("notifier", "notifier", 8005, "oms_notifier"),
        ("credit-bureau", "oms_devstack.fakes.credit_bureau", 8006, "oms_fake_credit_bureau"),
    ]
    # The demo stack checks credit against the fake bureau, with callbacks signed.
    order_env = config.service_env["order-svc"]
    assert order_env["CREDIT_CHECK_URL"] == "http://127.0.0.1:8006/credit/check"
    assert order_env["CREDIT_CALLBACK_SECRET"]
    # Only what a rule names is checked: every order of the seeded distributor channel.
    assert order_env["CREDIT_CHECK_CHANNELS"] == '["distributor"]'
    assert (
        config.service_env["credit-bureau"]["CREDIT_CALLBACK_SECRET"]
        == order_env["CREDIT_CALLBACK_SECRET"]
    )
    assert config.broker_port == 9092
    assert config.kafka_bootstrap is None
    assert config.database_url == "postgresql://postgres@127.0.0.1:5432"
    assert config.log_dir == tmp_path / ".oms" / "logs"
    assert config.pg_dir == tmp_path / ".oms" / "pg"


def test_env_overrides(tmp_path: Path) -> None:
    env = {
        "ORDER_SVC_PORT": "9101",
        "OMS_BROKER_PORT": "9999",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "DATABASE_URL": "postgresql://u:p@db:5433/ignored",
        "LOG_LEVEL": "DEBUG",
    }
    config = StackConfig.from_env(tmp_path, env)
    assert config.services[0].port == 9101
    assert config.services[1].port == 8002
    assert config.broker_port == 9999
    assert config.kafka_bootstrap == "kafka:9092"
    assert config.log_level == "DEBUG"
    assert server_url(config.database_url) == "postgresql://u:p@db:5433"
    assert redacted(config.database_url) == "postgresql://u:***@db:5433/ignored"
    assert (
        with_database("postgresql://h:1?sslmode=disable", "x")
        == "postgresql://h:1/x?sslmode=disable"
    )


def test_test_stacks_are_isolated(tmp_path: Path) -> None:
    a = StackConfig.for_tests(tmp_path / "a")
    b = StackConfig.for_tests(tmp_path / "b")
    ports_a = {s.port for s in a.services} | {a.broker_port}
    ports_b = {s.port for s in b.services} | {b.broker_port}
    defaults = {s.port for s in DEFAULT_SERVICES} | {9092}
    assert len(ports_a) == 6 and not ports_a & defaults
    assert not ports_b & defaults
    assert set(a.database_names).isdisjoint(b.database_names)
    pairs = zip(a.database_names, DEFAULT_SERVICES, strict=True)
    assert all(name.startswith(spec.db_name + "_t") for name, spec in pairs)
    assert a.kafka_bootstrap is None  # its own broker, whatever the shell says
