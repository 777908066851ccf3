"""Pure ASGI middleware plumbing shared by the services' HTTP layers.

Every request passes the correlation id, the server span, the latency histogram, the
body cap and the rate limit. Written as plain ASGI callables they cost a function call
each; as ``@app.middleware("http")`` (Starlette's BaseHTTPMiddleware) each one spawned a
task group and memory streams per request, which was a measurable share of a webhook's
acknowledgement under load.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ResponseStatus:
    """Wraps ``send`` to remember the status the application answered (500 until then:
    an application that raised answered nothing, and the error handler outside says 500)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.code = 500

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.code = int(message["status"])
        await self._send(message)


def header(scope: Scope, name: str) -> str | None:
    """The first value of request header ``name`` (case-insensitive), if any."""
    wanted = name.lower().encode("latin-1")
    for key, value in scope.get("headers") or ():
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None
