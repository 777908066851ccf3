"""Per-token rate limits: one caller's token cannot starve everybody else (429 + Retry-After).

A token bucket per bearer token (keyed by a hash of it, never the token itself): up to
``RATE_LIMIT_PER_TOKEN_BURST`` requests at once, refilled at ``RATE_LIMIT_PER_TOKEN_RPS``
per second. Requests without a bearer token are not limited here: in ``AUTH_MODE=dev``
the ``X-Operator`` header is not a credential (anyone can change it, so limiting it
protects nothing), partners' webhooks carry signatures and the gateway limits them per
channel, and unauthenticated reads of jwt-mode services are refused before they cost
much. Health, readiness and metrics are never limited (the orchestrator must see them).

Buckets live in the process: each replica limits on its own, so a caller spread over N
replicas by the load balancer gets up to N times the rate. That is the usual trade for
stateless services; a shared limiter (at the ingress) is the place for a global quota.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Receive, Scope, Send

from oms_servicekit.problems import send_problem

_NOT_LIMITED = ("/healthz", "/readyz", "/metrics")


class RateLimitSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RATE_LIMIT_", extra="ignore")

    #: Sustained requests per second per token; 0 switches the limit off.
    per_token_rps: float = 50.0
    #: Requests a token may make at once before the sustained rate applies.
    per_token_burst: int = 200
    #: Buckets kept (least recently used dropped first); bounds the memory.
    max_tokens_tracked: int = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Pure token-bucket arithmetic over a clock, per key; LRU-bounded."""

    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """0.0 if the request may go; otherwise the seconds until one token is back."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate
            )
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


class PerTokenRateLimitMiddleware:
    """ASGI middleware: 429 problem+json with ``Retry-After`` once a token's bucket is empty."""

    def __init__(self, app: ASGIApp, settings: RateLimitSettings | None = None) -> None:
        self.app = app
        s = settings or RateLimitSettings()
        self.enabled = s.per_token_rps > 0 and s.per_token_burst > 0
        self.buckets = TokenBuckets(s.per_token_rps, s.per_token_burst, s.max_tokens_tracked)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http" or scope["path"] in _NOT_LIMITED:
            await self.app(scope, receive, send)
            return
        key = _token_key(scope)
        wait = 0.0 if key is None else self.buckets.take(key, time.monotonic())
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        await send_problem(
            send,
            scope,
            429,
            f"too many requests for this token; retry after {retry_after} s",
            [(b"retry-after", str(retry_after).encode())],
        )


def _token_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return hashlib.sha256(token.strip()).hexdigest()[:32]
    return None
