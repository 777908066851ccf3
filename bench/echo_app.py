"""The HTTP limit: a trivial ASGI app that answers every request 202 with an empty body.

Served exactly as the services are (``uvicorn.run`` with the arguments of
``oms_servicekit.serve``: one process, no access log), so the gap between it and the
gateway is what the gateway itself costs. The body is read to the end, as the gateway
must to verify a signature.

Run as ``python -m bench.echo_app --port N``; :func:`running_echo` starts and stops one.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

READY_PATH = "/healthz"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """202 with an empty body for any request (200 on the readiness path)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the whole body, as a webhook receiver must
        message = await receive()
        more = bool(message.get("more_body"))
    status = 200 if scope["path"] == READY_PATH else 202
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.echo_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    # The same call as oms_servicekit.serve.serve, minus the services' logging set-up.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
    )


@contextlib.asynccontextmanager
async def running_echo(log_path: Path, root: Path) -> AsyncIterator[str]:
    """An echo server on a free port for the duration; its base URL."""
    from oms_devstack.ports import LOCALHOST, free_port
    from oms_devstack.procs import spawn, terminate
    from oms_devstack.service import http_client, is_ready

    port = free_port()
    proc: subprocess.Popen[bytes] = spawn(
        [sys.executable, "-m", "bench.echo_app", "--port", str(port)],
        env=_env(),
        log_path=log_path,
        cwd=root,
    )
    url = f"http://{LOCALHOST}:{port}"
    try:
        import asyncio

        async with http_client(timeout=2.0) as client:
            for _ in range(300):
                if await is_ready(client, url + READY_PATH):
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"echo server exited with {proc.returncode}; see {log_path}")
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"echo server not ready on {url}; see {log_path}")
        yield url
    finally:
        await terminate(proc, 10)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ) | {"PYTHONUNBUFFERED": "1"}


if __name__ == "__main__":
    main(sys.argv[1:])
