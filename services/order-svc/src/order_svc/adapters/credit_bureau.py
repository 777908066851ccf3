"""The credit bureau over HTTP, inside a hard time budget.

Composed outermost first, as the field notes prescribe:

``asyncio.timeout(budget)`` (its TimeoutError is the degrade path)
-> ``AsyncRetrying`` (timeouts, transport errors and 5xx only; exponential backoff with
jitter; stops after N attempts or before the budget runs out)
-> a slot among the calls to the bureau (a semaphore: at most ``concurrency`` under way;
waiting for one is our own queueing, so it sits outside both the breaker and the
attempt's clock)
-> the circuit breaker (purgatory; "open" is not retried, 4xx does not count as a failure;
after the cool-down exactly one probe is let through)
-> a per-attempt ``asyncio.timeout``, started once the request may go out: it counts time
at the bureau, never time queued behind our own calls
-> the httpx call with an explicit ``httpx.Timeout`` (httpx's default 5 s would otherwise
silently cut the budget).

So the breaker opens on the bureau's failures only (5xx, connect errors, attempts that
time out at the bureau); a burst of our own orders waiting for a slot never opens it, and
the whole budget (30 s by default, from the moment the order entered ``credit_check``)
still bounds the queueing.

The client never raises for a bureau problem: every way the call can end is a
:class:`CreditDecision`, so the caller has one place to decide what the order does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

BREAKER = "credit-bureau"

Outcome = Literal["approved", "refused", "pending", "degraded"]
DegradedReason = Literal["timeout", "breaker_open", "error"]


@dataclass(frozen=True)
class CreditDecision:
    outcome: Outcome
    #: Why the bureau refused, or what went wrong when degraded.
    detail: str | None = None
    degraded_reason: DegradedReason | None = None
    #: The bureau's reference for an asynchronous (202) check.
    external_ref: str | None = None

    @classmethod
    def degraded(cls, reason: DegradedReason, detail: str) -> CreditDecision:
        return cls("degraded", detail=detail, degraded_reason=reason)


@dataclass(frozen=True)
class BureauPolicy:
    """How patient the client is; every number is a setting of order-svc."""

    url: str
    budget_s: float = 30.0
    attempt_timeout_s: float = 5.0
    connect_timeout_s: float = 2.0
    max_attempts: int = 5
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    #: Calls under way to the bureau at most (the others wait for a slot).
    concurrency: int = 16


class BureauServerError(Exception):
    """A 5xx answer: the bureau is in trouble (retried, counts against the breaker)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"bureau answered {status}")
        self.status = status


class BreakerOpen(Exception):
    """The breaker refuses the call (open, or a probe is already under way)."""


class CreditBureauClient:
    def __init__(self, policy: BureauPolicy, http: httpx.AsyncClient | None = None) -> None:
        self.policy = policy
        self._http = http or httpx.AsyncClient(
            trust_env=False,
            limits=httpx.Limits(
                max_connections=policy.concurrency, max_keepalive_connections=policy.concurrency
            ),
        )
        self._owns_http = http is None
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=policy.breaker_threshold, default_ttl=policy.breaker_cooldown_s
        )
        self._probe_in_flight = False
        self._timeout = httpx.Timeout(
            policy.attempt_timeout_s,
            connect=min(policy.connect_timeout_s, policy.attempt_timeout_s),
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def breaker_state(self) -> str:
        breaker = await self._breakers.get_breaker(BREAKER)
        return breaker.context.state

    async def check(self, payload: dict[str, Any], budget_s: float | None = None) -> CreditDecision:
        """Ask the bureau within ``budget_s`` (default: the policy's budget)."""
        budget = self.policy.budget_s if budget_s is None else budget_s
        if budget <= 0:
            return CreditDecision.degraded("timeout", "no budget left")
        try:
            async with asyncio.timeout(budget):
                response = await self._with_retries(payload, budget)
        except TimeoutError:
            return CreditDecision.degraded("timeout", f"no answer within {budget:.1f} s")
        except BreakerOpen as exc:
            return CreditDecision.degraded("breaker_open", str(exc))
        except BureauServerError as exc:
            return CreditDecision.degraded("error", str(exc))
        except httpx.HTTPError as exc:
            return CreditDecision.degraded("error", f"{type(exc).__name__}: {exc}"[:300])
        return interpret(response)

    async def _with_retries(self, payload: dict[str, Any], budget: float) -> httpx.Response:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((TimeoutError, httpx.TransportError, BureauServerError)),
            wait=wait_exponential_jitter(
                multiplier=self.policy.backoff_initial_s,
                max=self.policy.backoff_max_s,
                jitter=self.policy.backoff_initial_s,
            ),
            stop=stop_after_attempt(self.policy.max_attempts) | stop_before_delay(budget),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(payload)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def _attempt(self, payload: dict[str, Any]) -> httpx.Response:
        # Queued here, no clock of the attempt runs and the breaker sees nothing.
        async with self._slots:
            return await self._send(payload)

    async def _send(self, payload: dict[str, Any]) -> httpx.Response:
        breaker = await self._breakers.get_breaker(BREAKER)
        probing = breaker.context.state != "closed"
        if probing:
            # Open or half-open: only one request may find out whether the bureau is back.
            if self._probe_in_flight:
                raise BreakerOpen(f"circuit {BREAKER} is open (probe under way)")
            self._probe_in_flight = True
        try:
            async with breaker:
                async with asyncio.timeout(self.policy.attempt_timeout_s):
                    response = await self._http.post(
                        self.policy.url, json=payload, timeout=self._timeout
                    )
                if response.status_code >= 500:
                    raise BureauServerError(response.status_code)
                return response
        except OpenedState as exc:
            raise BreakerOpen(str(exc)) from None
        finally:
            if probing:
                self._probe_in_flight = False


def interpret(response: httpx.Response) -> CreditDecision:
    """A 2xx/4xx answer as a decision (4xx is an answer, not an outage)."""
    if response.status_code == 202:
        ref = _json(response).get("check_id")
        return CreditDecision("pending", external_ref=str(ref) if ref else None)
    if response.status_code == 200:
        body = _json(response)
        decision = body.get("decision")
        if decision == "approved":
            return CreditDecision("approved")
        if decision == "refused":
            return CreditDecision("refused", detail=str(body.get("reason") or "refused"))
        return CreditDecision.degraded("error", f"unreadable bureau answer: {decision!r}")
    return CreditDecision.degraded("error", f"bureau answered {response.status_code}")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
