"""A test-mode Stack with stand-in services: start, env, fault drill, stop, drop databases."""

from __future__ import annotations

import os
import signal
import stat
import tempfile
from pathlib import Path

import asyncpg
import httpx
import pytest

from oms_devstack import (
    PortInUseError,
    ServiceSpec,
    ServiceStartError,
    Stack,
    free_port,
    port_is_free,
    probe,
    seed_demo,
)
from oms_devstack.dburl import DEFAULT_DATABASE_URL, with_database

SERVER = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


async def existing_databases(url: str, names: list[str]) -> set[str]:
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1)", names)
    finally:
        await conn.close()
    return {row["datname"] for row in rows}


def make_stack(tmp_path: Path, standin_path: Path, specs: list[ServiceSpec], **kw: object) -> Stack:
    return Stack.for_tests(
        tmp_path / "logs",
        root=tmp_path,
        services=specs,
        common_env={"PYTHONPATH": str(standin_path), "STANDIN_CREATE_DB": "1"},
        stop_timeout=10,
        **kw,  # type: ignore[arg-type]
    )


async def test_stack_lifecycle(
    tmp_path: Path, standin_path: Path, standin_specs: list[ServiceSpec]
) -> None:
    if not await probe(SERVER):
        pytest.skip(f"no PostgreSQL at {SERVER}")
    stack = make_stack(tmp_path, standin_path, standin_specs)
    names = stack.config.database_names
    try:
        assert all(n.startswith("oms_") and "_t" in n for n in names)
        assert all(spec.port not in range(8001, 8006) for spec in stack.config.services)
        try:
            await stack.start()
            assert await stack.readiness() == {n: True for n in stack.names}
            assert stack.private_postgres is None

            async with httpx.AsyncClient(trust_env=False) as client:
                env = (await client.get(stack.url("order-svc") + "/env")).json()
            assert env["DB_NAME"] == stack.db_name("order-svc")
            assert env["PORT"] == str(stack.port("order-svc"))
            assert env["HOST"] == "127.0.0.1"
            assert env["KAFKA_BOOTSTRAP_SERVERS"] == stack.kafka_bootstrap
            assert env["DATABASE_URL"] == stack.database_url
            assert env["GATEWAY_URL"] == stack.url("channel-gateway")
            assert env["NOTIFIER_URL"] == stack.url("notifier")
            assert not port_is_free(stack.config.broker_port)  # its own broker runs
            assert await existing_databases(stack.database_url, names) == set(names)

            # Fault drill: kill -9 one service, then bring it back.
            first_pid = stack.pid("inventory-svc")
            stack.kill("inventory-svc", signal.SIGKILL)
            assert await stack.wait_exit("inventory-svc", timeout_s=10) == -signal.SIGKILL
            assert not stack.is_running("inventory-svc")
            assert (await stack.readiness())["inventory-svc"] is False
            await stack.start_service("inventory-svc")
            assert stack.pid("inventory-svc") not in (None, first_pid)
            assert (await stack.readiness())["inventory-svc"] is True
            assert stack.log_path("inventory-svc").read_text().count("=== ") == 2

            # Graceful stop and restart of one service.
            # (uvicorn, like the stand-in, ends with the signal after a graceful shutdown)
            assert await stack.stop_service("customer-svc") in (0, -signal.SIGTERM)
            assert port_is_free(stack.port("customer-svc"))
            await stack.restart_service("customer-svc")
            assert stack.is_running("customer-svc")
        finally:
            await stack.stop()
        assert all(port_is_free(stack.port(n)) for n in stack.names)
        assert port_is_free(stack.config.broker_port)
        await stack.stop()  # idempotent
        await stack.drop_databases()
        assert await existing_databases(stack.database_url, names) == set()
    finally:  # never leak throwaway databases, even when an assertion failed
        await stack.drop_databases()


async def test_seed_is_idempotent(
    tmp_path: Path, standin_path: Path, standin_specs: list[ServiceSpec]
) -> None:
    specs = [s for s in standin_specs if s.name in ("inventory-svc", "channel-gateway")]
    stack = Stack.for_tests(
        tmp_path / "logs",
        root=tmp_path,
        services=specs,
        common_env={"PYTHONPATH": str(standin_path)},
    )
    async with stack:
        first = await seed_demo(stack.url("inventory-svc"), stack.url("channel-gateway"))
        second = await seed_demo(stack.url("inventory-svc"), stack.url("channel-gateway"))
        async with httpx.AsyncClient(trust_env=False) as client:
            seeded = (await client.get(stack.url("inventory-svc") + "/seeded")).json()
            channels = (await client.get(stack.url("channel-gateway") + "/seeded")).json()
    assert len(first.created) == 2 + 3 + 5 + 5 and not first.existing
    assert not second.created and len(second.existing) == 2 + 3 + 5
    assert seeded["warehouses"] == ["WH-BJ", "WH-SH"]
    assert seeded["skus"] == ["SKU-1", "SKU-2", "SKU-COLD"]
    assert len(seeded["receipts"]) == 5  # not posted again on the second run
    assert {r["operator"] for r in seeded["receipts"]} == {"demo-seed"}
    assert channels["channels"] == ["app", "distributor", "live", "tmall", "web"]


async def test_failing_service_reports_its_log(
    tmp_path: Path, standin_path: Path, standin_specs: list[ServiceSpec]
) -> None:
    stack = Stack.for_tests(
        tmp_path / "logs",
        root=tmp_path,
        services=standin_specs[:2],
        common_env={"PYTHONPATH": str(standin_path)},
        service_env={standin_specs[1].name: {"STANDIN_FAIL": "1"}},
    )
    with pytest.raises(ServiceStartError) as failure:
        await stack.start()
    assert "exited with code 3" in str(failure.value)
    assert "boom" in str(failure.value)
    # everything that did start was stopped again
    assert not stack.is_running(standin_specs[0].name)
    assert port_is_free(stack.config.broker_port)


async def test_taken_port_is_one_clear_error(
    tmp_path: Path, standin_path: Path, standin_specs: list[ServiceSpec]
) -> None:
    stack = Stack.for_tests(tmp_path / "logs", root=tmp_path, services=standin_specs[:1])
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", stack.port(standin_specs[0].name)))
        sock.listen()
        with pytest.raises(PortInUseError) as failure:
            await stack.start()
    assert "\n" not in str(failure.value)
    assert "already in use" in str(failure.value)


def _reachable_tmp_dir() -> Path:
    """A temp dir the unprivileged PostgreSQL user can enter (pytest's is 0700 under root)."""
    path = Path(tempfile.mkdtemp(prefix="oms-devstack-pg-"))
    path.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return path


async def test_private_postgres_fallback(
    tmp_path: Path, standin_path: Path, standin_specs: list[ServiceSpec]
) -> None:
    """Nothing answers at DATABASE_URL: the stack runs its own PostgreSQL and stops it."""
    import shutil

    pg_root = _reachable_tmp_dir()
    dead_url = f"postgresql://postgres@127.0.0.1:{free_port()}"
    stack = make_stack(
        tmp_path,
        standin_path,
        standin_specs[:2],
        database_url=dead_url,
        private_postgres_dir=pg_root / "pg",
    )
    try:
        await stack.start()
        pg = stack.private_postgres
        assert pg is not None and pg.started
        # the private server, reached through its socket where it has one
        assert pg.url != dead_url
        assert stack.database_url == pg.url or "host=" in stack.database_url
        names = stack.config.database_names
        assert await existing_databases(stack.database_url, names) == set(names)
        await stack.stop()
        assert not await probe(pg.url)
        await stack.drop_databases()  # restarts the private server just for this
        assert not await probe(pg.url)
        await stack.start_database()
        assert await existing_databases(stack.database_url, names) == set()
    finally:
        await stack.stop()
        shutil.rmtree(pg_root, ignore_errors=True)


async def test_ready_timeout_reports_and_stops(
    tmp_path: Path, standin_path: Path, standin_specs: list[ServiceSpec]
) -> None:
    stack = Stack.for_tests(
        tmp_path / "logs",
        root=tmp_path,
        services=standin_specs[:1],
        common_env={"PYTHONPATH": str(standin_path), "STANDIN_NOT_READY": "1"},
        ready_timeout=1.5,
    )
    with pytest.raises(ServiceStartError) as failure:
        await stack.start()
    assert "was not ready" in str(failure.value)
    assert not stack.is_running(standin_specs[0].name)
