"""TCP port helpers: pick free ports, tell whether one is taken, wait until one listens."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable

#: Everything the stack runs binds to loopback only; nothing is exposed to the network.
LOCALHOST = "127.0.0.1"


def free_ports(count: int, host: str = LOCALHOST) -> list[int]:
    """Ask the kernel for ``count`` distinct free ports.

    All sockets stay open until every port is picked, so the same port cannot be handed out
    twice in one call. Another process may still grab one before we bind it; for test stacks
    that window is small enough.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port(host: str = LOCALHOST) -> int:
    """One free port (see `free_ports`)."""
    return free_ports(1, host)[0]


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """True when a listener could bind ``host:port`` right now.

    SO_REUSEADDR mirrors what uvicorn and tansu do, so a port lingering in TIME_WAIT after a
    previous run does not count as taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(port: int, host: str = LOCALHOST, timeout: float = 0.25) -> bool:
    """True when something accepts a TCP connection on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


async def wait_for_port(
    port: int,
    *,
    host: str = LOCALHOST,
    timeout_s: float,
    still_alive: Callable[[], bool] = lambda: True,
) -> bool:
    """Poll until ``host:port`` accepts; False on timeout or when ``still_alive`` says no.

    ``still_alive`` lets the caller stop waiting as soon as the process meant to listen there
    has died, instead of sitting out the whole timeout.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(port_accepts, port, host):
            return True
        if not still_alive():
            return False
        await asyncio.sleep(0.02)
    return False
