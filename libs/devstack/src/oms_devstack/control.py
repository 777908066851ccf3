"""Find and stop a stack that another launcher invocation started (``stop``/``status``).

A detached stack's processes are stopped directly, services first. A foreground launcher is
asked to stop (SIGTERM) instead, so that it shuts its own stack down in order and removes its
state file, exactly as on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from oms_devstack.postgres import PrivatePostgres
from oms_devstack.procs import find_recorded, is_alive, terminate_recorded
from oms_devstack.state import ProcessRecord, StackState, state_path


def _find(record: ProcessRecord | None) -> psutil.Process | None:
    return find_recorded(record.pid, record.created) if record else None


def live_launcher(state: StackState) -> psutil.Process | None:
    """The foreground launcher that owns the stack, while it runs."""
    if state.detached:
        return None
    return find_recorded(state.launcher_pid, state.launcher_created)


def live_processes(state: StackState) -> dict[str, psutil.Process]:
    """Recorded service and broker processes that are still running."""
    found: dict[str, psutil.Process] = {}
    for service in state.services:
        proc = _find(service.process)
        if proc is not None:
            found[service.name] = proc
    broker = _find(state.broker)
    if broker is not None:
        found["broker"] = broker
    return found


def is_running(state: StackState) -> bool:
    """True when anything the state file records still runs."""
    return live_launcher(state) is not None or bool(live_processes(state))


def stop_recorded(root: Path, timeout: float = 30.0) -> list[str]:
    """Stop the stack recorded under ``root`` and remove its state file; what was done."""
    path = state_path(root)
    state = StackState.load(path)
    if state is None:
        return []
    done: list[str] = []
    launcher = live_launcher(state)
    if launcher is not None:
        os.kill(launcher.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout + 30
        while is_alive(launcher) and time.monotonic() < deadline:
            time.sleep(0.1)
        done.append(f"asked the foreground launcher (pid {launcher.pid}) to stop")
    procs = live_processes(state)
    services = [p for name, p in procs.items() if name != "broker"]
    if services:
        terminate_recorded(services, timeout)
        done.append(f"stopped {len(services)} service(s)")
    if "broker" in procs:
        terminate_recorded([procs["broker"]], 10.0)
        done.append("stopped the broker")
    if state.private_postgres_started and state.private_postgres_data_dir and launcher is None:
        data_dir = Path(state.private_postgres_data_dir)
        if (data_dir / "postmaster.pid").exists():
            PrivatePostgres.stop_data_dir(data_dir)
            done.append(f"stopped the private PostgreSQL ({data_dir})")
    path.unlink(missing_ok=True)
    return done
