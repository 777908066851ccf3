"""Per-token rate limits: a token past its burst gets 429 problem+json with Retry-After,
other tokens and the health probes are unaffected, and the bucket refills with time."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from oms_servicekit.rate_limit import (
    PerTokenRateLimitMiddleware,
    RateLimitSettings,
    TokenBuckets,
)


def limited_app(rps: float, burst: int) -> FastAPI:
    app = FastAPI()

    @app.get("/orders")
    async def orders() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        PerTokenRateLimitMiddleware,
        settings=RateLimitSettings(per_token_rps=rps, per_token_burst=burst),
    )
    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_past_its_burst_is_refused_with_retry_after_and_others_go_on() -> None:
    transport = httpx.ASGITransport(app=limited_app(rps=0.5, burst=3))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(3):
            assert (await client.get("/orders", headers=bearer("token-a"))).status_code == 200
        refused = await client.get("/orders", headers=bearer("token-a"))
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "2"  # one token back after 1 / 0.5 s
        assert refused.json()["status"] == 429
        assert "token-a" not in refused.text
        assert (await client.get("/orders", headers=bearer("token-b"))).status_code == 200
        assert (await client.get("/healthz", headers=bearer("token-a"))).status_code == 200
        for _ in range(5):  # no bearer token: nothing to key a quota on here
            assert (await client.get("/orders")).status_code == 200


async def test_a_zero_rate_switches_the_limit_off() -> None:
    transport = httpx.ASGITransport(app=limited_app(rps=0, burst=1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(5):
            assert (await client.get("/orders", headers=bearer("t"))).status_code == 200


def test_the_bucket_refills_at_the_rate_and_never_above_the_burst() -> None:
    buckets = TokenBuckets(rate=2.0, burst=2, max_keys=10)
    assert buckets.take("k", now=0.0) == 0.0
    assert buckets.take("k", now=0.0) == 0.0
    assert buckets.take("k", now=0.0) == 0.5
    assert buckets.take("k", now=0.5) == 0.0  # one token back after half a second
    assert buckets.take("k", now=100.0) == 0.0
    assert buckets.take("k", now=100.0) == 0.0
    assert buckets.take("k", now=100.0) > 0.0  # the long pause refilled two, not 200


def test_the_least_recently_used_bucket_is_dropped_past_the_bound() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, max_keys=2)
    buckets.take("a", 0.0)
    buckets.take("b", 0.0)
    buckets.take("c", 0.0)  # drops "a": it starts again with a full bucket
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("c", 0.0) > 0.0
