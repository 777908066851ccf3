"""Spawning, signalling and reaping the stack's child processes.

Children always run in their own session (process group): a Ctrl-C at the terminal then
reaches only the launcher, which shuts the stack down in order (services, broker, database)
instead of everything dying at once; and signalling the group also reaches any grandchild a
service may fork. Children of a foreground stack additionally ask Linux to SIGTERM them when
the launcher dies, so a crashed launcher or test run does not leave orphans holding ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1


def _pdeathsig_hook() -> Callable[[], None] | None:
    """A preexec hook that ties the child's life to the launcher's (Linux only).

    libc is resolved here, in the parent, so the child does nothing between fork and exec
    but one system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the launcher already died before prctl took effect
            os._exit(1)

    return hook


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    cwd: Path | None = None,
    detach: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr appended to ``log_path``.

    The log is appended to, never truncated, so a restarted service keeps the log of the run
    that crashed; a header line marks where each run begins. With ``detach`` the child is not
    tied to the launcher and survives it (``run --detach``).

    The parent-death signal belongs to the *thread* that forks, so call this from the event
    loop's thread, never from a worker thread that may end before the child does.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== {stamp} starting: {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=None if detach else _pdeathsig_hook(),
        )


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group led by ``pid``; a gone process is not an error."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:  # not a group leader we own: fall back to the process itself
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


async def wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    """Wait (without blocking the loop) for our child to exit; its code, or None on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        code = proc.poll()
        if code is not None or time.monotonic() >= deadline:
            return code
        await asyncio.sleep(0.05)


async def terminate(proc: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    """SIGTERM the child's group, give it ``timeout_s`` seconds, then SIGKILL it."""
    if proc.poll() is not None:
        return proc.returncode
    signal_group(proc.pid, signal.SIGTERM)
    code = await wait_exit(proc, timeout_s)
    if code is None:
        signal_group(proc.pid, signal.SIGKILL)
        code = await wait_exit(proc, 10)
    return code


def process_identity(pid: int) -> float | None:
    """The creation time of ``pid``, which together with the pid names a process uniquely.

    Recorded in ``.oms/stack.json`` so that ``stop`` never signals an unrelated process that
    happens to have reused the pid of a long-gone service.
    """
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def is_alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a zombie no longer holds ports or files)."""
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def find_recorded(pid: int, created: float | None) -> psutil.Process | None:
    """The live process recorded as ``(pid, created)``, or None when it is gone or replaced."""
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return None
    if created is not None and abs(proc.create_time() - created) > 0.01:
        return None
    return proc if is_alive(proc) else None


def terminate_recorded(procs: Sequence[psutil.Process], timeout_s: float) -> None:
    """Stop processes this launcher did not spawn itself (a detached stack's), groups first.

    All get SIGTERM at once and share the grace period; survivors get SIGKILL. They are not
    our children, so waiting means polling until each is gone or a zombie.
    """
    remaining = list(procs)
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
        for proc in remaining:
            signal_group(proc.pid, sig)
        deadline = time.monotonic() + wait_s
        while remaining and time.monotonic() < deadline:
            remaining = [p for p in remaining if is_alive(p)]
            if remaining:
                time.sleep(0.05)
        if not remaining:
            return


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log, for error messages; empty when there is none."""
    try:
        data = path.read_bytes()[-64_000:]
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
