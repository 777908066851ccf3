"""``.oms/stack.json``: what a launcher started, so another invocation can find and stop it.

Each process is recorded as pid *and* creation time: pids are reused, and ``stop`` must never
signal a process that merely inherited the number of a long-gone service.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oms_devstack.config import oms_dir
from oms_devstack.procs import process_identity
from oms_devstack.stack import Stack


def state_path(root: Path) -> Path:
    return oms_dir(root) / "stack.json"


@dataclass
class ProcessRecord:
    """One process of the stack."""

    name: str
    pid: int
    created: float | None
    port: int | None = None


@dataclass
class ServiceRecord:
    """Where a service listens (pid may be None if it is not running)."""

    name: str
    port: int
    url: str
    db_name: str
    ready_path: str
    links: list[str]
    process: ProcessRecord | None


@dataclass
class StackState:
    """The content of ``.oms/stack.json``."""

    launcher_pid: int
    launcher_created: float | None
    detached: bool
    database_url: str
    kafka_bootstrap: str
    log_dir: str
    broker: ProcessRecord | None
    private_postgres_started: bool
    private_postgres_data_dir: str | None
    private_postgres_port: int | None
    services: list[ServiceRecord] = field(default_factory=list)

    @classmethod
    def of(cls, stack: Stack) -> StackState:
        """Snapshot a started stack."""
        broker = stack.broker
        broker_proc = broker.process if broker else None
        pg = stack.private_postgres
        services = []
        for name in stack.names:
            spec = stack.spec(name)
            pid = stack.pid(name)
            services.append(
                ServiceRecord(
                    name=name,
                    port=spec.port,
                    url=stack.url(name),
                    db_name=spec.db_name,
                    ready_path=spec.ready_path,
                    links=list(spec.links),
                    process=ProcessRecord(name, pid, process_identity(pid), spec.port)
                    if pid
                    else None,
                )
            )
        return cls(
            launcher_pid=os.getpid(),
            launcher_created=process_identity(os.getpid()),
            detached=stack.config.detach,
            database_url=stack.database_url,
            kafka_bootstrap=stack.kafka_bootstrap,
            log_dir=str(stack.config.log_dir),
            broker=ProcessRecord(
                "broker", broker_proc.pid, process_identity(broker_proc.pid), broker.port
            )
            if broker and broker_proc
            else None,
            private_postgres_started=bool(pg and pg.started),
            private_postgres_data_dir=str(pg.data_dir) if pg else None,
            private_postgres_port=pg.port if pg else None,
            services=services,
        )

    def save(self, path: Path) -> None:
        """Write atomically, so a concurrent reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        """Read the file; None when missing or unreadable (treated as no stack)."""
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
            broker = raw.pop("broker")
            services = raw.pop("services")
            return cls(
                **raw,
                broker=ProcessRecord(**broker) if broker else None,
                services=[
                    ServiceRecord(
                        **{k: v for k, v in s.items() if k != "process"},
                        process=ProcessRecord(**s["process"]) if s.get("process") else None,
                    )
                    for s in services
                ],
            )
        except (OSError, ValueError, TypeError, KeyError):
            return None
