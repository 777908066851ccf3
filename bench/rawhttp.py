"""A lean HTTP/1.1 keep-alive client for the load generator.

The benchmark client runs on the same two cores as the stack it measures, so every
millisecond of CPU it spends per request is taken from the services. httpx costs about
1.5 ms of CPU per signed post here (request models, header normalisation, its transport
stack); writing the request bytes and reading the status line, headers and body off one
socket costs a tenth of that. Same wire format, same keep-alive connection per simulated
channel client, so the gateway sees what it would see from httpx.

Only what the benchmarks need: ``POST`` with a body, ``Content-Length`` or chunked
answers, a stale keep-alive connection reopened once. Errors are ``httpx.TransportError``
so callers keep one ``except``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx


class RawHTTPError(httpx.TransportError):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


@dataclass(frozen=True)
class RawResponse:
    """The part of ``httpx.Response`` the benchmarks read."""

    status_code: int
    content: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class RawClient:
    """One simulated channel client: one keep-alive connection, opened on first use."""

    def __init__(self, timeout_s: float = 120.0) -> None:
        self.timeout_s = timeout_s
        self._netloc: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(
        self,
        url: str,
        *,
        content: bytes | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> RawResponse:
        fields = dict(headers or {})
        if json is not None:
            content = jsonlib.dumps(json).encode()
            fields.setdefault("Content-Type", "application/json")
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        request = _request_bytes(parts.netloc, path, fields, content or b"")
        reused = self._writer is not None and self._netloc == parts.netloc
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    return await self._exchange(parts.netloc, request)
                except (ConnectionError, asyncio.IncompleteReadError):
                    if not reused:
                        raise
                    # The server closed an idle keep-alive connection: open a new one once
                    # (a repeated post is harmless: the gateway de-duplicates it).
                    await self.aclose()
                    return await self._exchange(parts.netloc, request)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            await self.aclose()
            raise RawHTTPError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, netloc: str, request: bytes) -> RawResponse:
        reader, writer = await self._connection(netloc)
        writer.write(request)
        status_line = await reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length: int | None = None
        chunked = close = False
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"connection":
                close = b"close" in value.lower()
        if chunked:
            body = await _read_chunked(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        else:  # no framing: the body ends with the connection
            body, close = await reader.read(), True
        if close:
            await self.aclose()
        return RawResponse(status, body)

    async def _connection(self, netloc: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._writer is not None and (self._netloc != netloc or self._reader_at_eof()):
            await self.aclose()
        if self._reader is None or self._writer is None:
            host, _, port = netloc.rpartition(":")
            self._reader, self._writer = await asyncio.open_connection(host, int(port))
            self._netloc = netloc
        return self._reader, self._writer

    def _reader_at_eof(self) -> bool:
        return self._reader is None or self._reader.at_eof()

    async def aclose(self) -> None:
        writer, self._reader, self._writer, self._netloc = self._writer, None, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _request_bytes(netloc: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {netloc}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
