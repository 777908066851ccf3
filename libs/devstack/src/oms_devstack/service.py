"""One service process: start it, know when it is ready, stop or kill it.

Kept separate from `Stack` so that a single service can be killed and restarted on its own,
which is what the fault drills of the end-to-end tests do.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from oms_devstack.errors import ServiceStartError
from oms_devstack.ports import LOCALHOST
from oms_devstack.procs import log_tail, signal_group, spawn, terminate, wait_exit
from oms_devstack.specs import ServiceSpec


def http_client(timeout: float = 5.0) -> httpx.AsyncClient:
    """An HTTP client for talking to the stack.

    ``trust_env=False``: a developer's HTTP(S)_PROXY must not capture requests to loopback.
    """
    return httpx.AsyncClient(timeout=timeout, trust_env=False)


async def is_ready(client: httpx.AsyncClient, url: str) -> bool:
    """True when ``GET url`` answers 200; any error counts as not (yet) ready."""
    try:
        response = await client.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


class ServiceProcess:
    """A running (or stopped) instance of one `ServiceSpec`."""

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
        detach: bool = False,
    ) -> None:
        self.spec = spec
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.detach = detach
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8001``."""
        return f"http://{LOCALHOST}:{self.spec.port}"

    @property
    def pid(self) -> int | None:
        """Pid while the process runs, else None."""
        proc = self.process
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """True while the process has not exited (ready or not)."""
        return self.process is not None and self.process.poll() is None

    async def start(self, timeout_s: float) -> None:
        """Start the process and wait until ``/readyz`` answers 200.

        On failure the process is stopped and the error carries the tail of its log, since
        that is where the actual reason (a traceback, a refused connection) is.
        """
        if self.running:
            return
        argv = [sys.executable, "-m", self.spec.module]
        self.process = spawn(
            argv, env=self.env, log_path=self.log_path, cwd=self.cwd, detach=self.detach
        )
        try:
            await self.wait_ready(timeout_s)
        except BaseException:
            await self.stop(timeout_s=5)
            raise

    async def wait_ready(self, timeout_s: float) -> None:
        """Poll the readiness endpoint until 200, the process exits, or ``timeout_s`` passes."""
        proc = self.process
        if proc is None:
            raise ServiceStartError(f"{self.spec.name} was never started")
        ready_url = self.url + self.spec.ready_path
        deadline = time.monotonic() + timeout_s
        async with http_client(timeout=2.0) as client:
            while True:
                if await is_ready(client, ready_url):
                    return
                if proc.poll() is not None:
                    raise self._failure(f"exited with code {proc.returncode} during start-up")
                if time.monotonic() >= deadline:
                    raise self._failure(f"was not ready at {ready_url} after {timeout_s:.0f} s")
                await asyncio.sleep(0.1)

    async def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Returns the exit code, if any."""
        if self.process is None:
            return None
        return await terminate(self.process, timeout_s)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the service (and anything it forked) without waiting."""
        if self.running and self.process is not None:
            signal_group(self.process.pid, sig)

    async def wait_exit(self, timeout_s: float) -> int | None:
        """Wait for the process to exit (after `kill`); its code, or None on timeout."""
        if self.process is None:
            return None
        return await wait_exit(self.process, timeout_s)

    def _failure(self, what: str) -> ServiceStartError:
        tail = log_tail(self.log_path)
        return ServiceStartError(
            f"{self.spec.name} ({self.spec.module}) {what}; log {self.log_path}, last lines:\n"
            f"{tail}"
        )
