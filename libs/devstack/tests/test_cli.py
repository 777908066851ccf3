"""The CLI end to end, with stand-ins shadowing the real service modules via PYTHONPATH."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from oms_devstack import free_ports, port_is_free
from oms_devstack.dburl import DEFAULT_DATABASE_URL, host_port
from oms_devstack.ports import port_accepts
from oms_devstack.specs import DEFAULT_SERVICES, FAKE_CREDIT_BUREAU

SERVER = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


@pytest.fixture
def cli_env(standin_path: Path) -> dict[str, str]:
    """Environment moving every port of the `make run` stack to a free one."""
    host, port = host_port(SERVER)
    if not port_accepts(port, host):
        pytest.skip(f"no PostgreSQL at {SERVER}")
    launched = (*DEFAULT_SERVICES, FAKE_CREDIT_BUREAU)
    ports = free_ports(len(launched) + 1)
    env = {**os.environ, "PYTHONPATH": str(standin_path), "DATABASE_URL": SERVER}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env["OMS_BROKER_PORT"] = str(ports[0])
    for spec, port in zip(launched, ports[1:], strict=True):
        assert spec.port_env
        env[spec.port_env] = str(port)
    return env


def cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oms_devstack", "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def recorded_pids(root: Path) -> list[int]:
    state = json.loads((root / ".oms" / "stack.json").read_text())
    return [s["process"]["pid"] for s in state["services"]] + [state["broker"]["pid"]]


def gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_detached_run_status_example_stop(tmp_path: Path, cli_env: dict[str, str]) -> None:
    run = cli(tmp_path, cli_env, "run", "--detach")
    assert run.returncode == 0, run.stderr
    try:
        assert "demo data: 16 created" in run.stdout  # incl. the tag rules
        gateway_port = cli_env["GATEWAY_PORT"]
        assert f"http://127.0.0.1:{gateway_port}/docs" in run.stdout
        assert f"http://127.0.0.1:{cli_env['NOTIFIER_PORT']}/events" in run.stdout
        pids = recorded_pids(tmp_path)
        assert all(not gone(pid) for pid in pids)  # they outlived the launcher

        # The copy-paste example, run as printed, passes signature verification.
        example = run.stdout[run.stdout.index("BODY=") : run.stdout.index("then fetch")]
        posted = subprocess.run(["bash", "-c", example], capture_output=True, text=True)
        assert "ORD-STANDIN-1" in posted.stdout, posted.stdout + posted.stderr

        status = cli(tmp_path, cli_env, "status")
        assert status.returncode == 0, status.stdout
        assert status.stdout.count(" ready") == 6  # five services and the fake bureau

        again = cli(tmp_path, cli_env, "run", "--detach")
        assert again.returncode == 1
        assert again.stderr.strip().count("\n") == 0
        assert "already running" in again.stderr
    finally:
        stop = cli(tmp_path, cli_env, "stop")
    assert stop.returncode == 0
    assert "stopped 6 service(s); stopped the broker" in stop.stdout
    assert all(gone(pid) for pid in pids)
    assert not (tmp_path / ".oms" / "stack.json").exists()
    assert "no stack is running" in cli(tmp_path, cli_env, "stop").stdout


def test_foreground_run_stops_on_sigint(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "oms_devstack", "--root", str(tmp_path), "run", "--no-seed"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env,
    )
    state_file = tmp_path / ".oms" / "stack.json"
    deadline = time.monotonic() + 60
    while not state_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state_file.exists(), proc.communicate()[0] if proc.poll() is not None else "timeout"
    time.sleep(0.2)  # the banner follows the state file
    pids = recorded_pids(tmp_path)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Press Ctrl-C" in out and out.rstrip().endswith("stopped.")
    assert all(gone(pid) for pid in pids)
    assert not state_file.exists()
    assert port_is_free(int(cli_env["OMS_BROKER_PORT"]))


def test_taken_port_is_reported_in_one_line(tmp_path: Path, standin_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(standin_path), "ORDER_SVC_PORT": str(port)}
        env["OMS_BROKER_PORT"] = str(free_ports(1)[0])
        result = cli(tmp_path, env, "run")
    assert result.returncode == 1
    assert result.stdout == ""
    assert re.fullmatch(rf"error: port {port} \(order-svc\) is already in use.*\n", result.stderr)
