"""Posting signed orders as channels do, timing each acknowledgement.

Each simulated client has its own keep-alive connection, as separate channel clients would
(one client with a large shared pool spends more CPU on pool bookkeeping than on requests).
The connection is :class:`bench.rawhttp.RawClient`, not httpx: the client shares the
stack's cores, and httpx's CPU per post was an eighth of the whole machine in double11.

A channel that is answered 503 (the service is shedding load: nothing was changed) or 429
(its rate limit) retries the same body later, so the gateway's de-duplication keeps it one
order; a benchmark does the same instead of counting such answers as lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from bench.rawhttp import RawClient, RawResponse
from channel_gateway.domain.signature import sign

T = TypeVar("T")

RETRY_STATUSES = (429, 503)
MAX_ATTEMPTS = 20


@dataclass
class Post:
    """One order as a channel posts it, and what came back."""

    channel: str
    raw: bytes
    sent_wall: float = 0.0
    sent: float = 0.0
    acked: float = 0.0
    status: int = 0
    order_ref: str | None = None
    retries: int = 0
    error: str | None = None

    @property
    def ack_ms(self) -> float:
        """First send to the final answer, in milliseconds (retries included)."""
        return (self.acked - self.sent) * 1000

    @property
    def accepted(self) -> bool:
        """Created an order (202), or found the one an earlier, retried attempt created."""
        return self.status in (200, 202) and self.order_ref is not None


@dataclass
class PostingStats:
    statuses: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class ClientPool:
    """``size`` simulated clients, created once (before any clock starts) and reused."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._clients: list[RawClient] = []

    async def __aenter__(self) -> ClientPool:
        self._clients = [RawClient() for _ in range(self.size)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.aclose() for c in self._clients), return_exceptions=True)
        self._clients = []

    async def run(
        self, items: Iterable[T], worker: Callable[[RawClient, T], Awaitable[None]]
    ) -> None:
        """``worker(client, item)`` for every item; the clients take items in turn."""
        if not self._clients:
            raise RuntimeError("ClientPool used outside its context")
        it = iter(items)

        async def loop(http: RawClient) -> None:
            for item in it:
                await worker(http, item)

        await asyncio.gather(*(loop(c) for c in self._clients))


async def send_order(
    http: RawClient, gateway: str, channel: str, raw: bytes, secret: str
) -> RawResponse:
    """A signed ``generic`` webhook, signed at send time as a channel does."""
    return await http.post(
        f"{gateway}/webhooks/{channel}",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-OMS-Signature": sign(secret, int(time.time()), raw),
        },
    )


async def post_one(http: RawClient, gateway: str, post: Post, secret: str) -> None:
    post.sent_wall, post.sent = time.time(), time.perf_counter()
    for attempt in range(MAX_ATTEMPTS):
        try:
            response = await send_order(http, gateway, post.channel, post.raw, secret)
        except Exception as exc:  # the checks count it as not accepted
            post.error = f"{type(exc).__name__}: {exc}"[:200]
            break
        post.status = response.status_code
        if response.status_code not in RETRY_STATUSES:
            if response.status_code in (200, 202):
                post.order_ref = response.json().get("order_ref")
            break
        post.retries += 1
        await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
    post.acked = time.perf_counter()


async def post_all(pool: ClientPool, gateway: str, posts: list[Post], secret: str) -> PostingStats:
    """Post every order to the gateway at ``gateway`` from the pool's clients at once."""
    await pool.run(posts, lambda http, p: post_one(http, gateway, p, secret))
    stats = PostingStats()
    for p in posts:
        stats.statuses[p.status] += 1
        stats.retries += p.retries
        if p.error:
            stats.errors[p.error.split(":")[0]] += 1
    return stats
