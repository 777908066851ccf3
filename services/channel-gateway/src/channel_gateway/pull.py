"""Pull connectors: marketplaces polled for orders changed since a cursor (TOP style).

The request is signed like Taobao's TOP API (sorted parameters concatenated as
key+value, ``MD5(secret + params + secret)`` or ``HMAC-SHA256(secret, params)``, upper
hex). Each run asks for orders modified in ``[cursor - overlap, now]``, page by page,
and ingests each page in one transaction; orders are deduplicated by their id (an
order seen again only produces an event if it became paid or cancelled). The cursor
moves to the window's end only after the last page, so a run that dies halfway (even
in the middle of a page) is simply repeated from the same cursor: no gap, and the
dedup leaves no duplicate. 429 (honouring Retry-After), 5xx and timeouts are retried
with exponential backoff. The job runs on its own task, outside any consumer batch.

The marketplace URL is an operator's word, so before every request the URL and each
address its host resolves to pass the outbound policy (:mod:`oms_servicekit.outbound`):
a refused pull sends nothing, is logged, counted and written to the channel's delivery
audit, and is tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client import Counter
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential

from channel_gateway.adapters.repository import Channel, GatewayRepository
from channel_gateway.domain.config import PullConfig
from channel_gateway.domain.platforms import apply_channel, from_top_trade
from channel_gateway.ingest import ingest
from oms_messaging import UnitOfWork
from oms_servicekit.outbound import OutboundPolicy, OutboundRefused, check_resolved

log = logging.getLogger(__name__)

PULL_RUNS = Counter(
    "oms_gateway_pull_runs",
    "Pull runs of marketplace channels, by channel and outcome (ok; failed; refused: "
    "the URL or an address it resolves to is forbidden, nothing was sent).",
    ["channel", "outcome"],
)

METHOD = "taobao.trades.sold.increment.get"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def top_sign(params: dict[str, str], secret: str, method: str = "md5") -> str:
    """TOP's signature over the sorted parameters (``sign`` itself excluded)."""
    text = "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign")
    if method == "md5":
        return hashlib.md5((secret + text + secret).encode()).hexdigest().upper()
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()


class PullError(Exception):
    """The marketplace refused the request (not worth retrying)."""


class Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Page:
    trades: list[dict[str, Any]]
    has_next: bool


class MarketplaceClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        config: PullConfig,
        secret: str,
        *,
        attempts: int = 6,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        policy: OutboundPolicy | None = None,
    ) -> None:
        self._http = http
        self._config = config
        self._secret = secret
        self._policy = policy or OutboundPolicy()
        self._attempts = attempts
        self._exponential = wait_exponential(multiplier=backoff_s, max=max_backoff_s)
        self._max_backoff_s = max_backoff_s

    def _wait(self, state: Any) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self._max_backoff_s)
        return float(self._exponential(state))

    async def page(self, start: datetime, end: datetime, page_no: int) -> Page:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(Retryable),
            wait=self._wait,
            stop=stop_after_attempt(self._attempts),
            reraise=True,
        ):
            with attempt:
                return await self._fetch(start, end, page_no)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch(self, start: datetime, end: datetime, page_no: int) -> Page:
        config = self._config
        params = {
            "method": METHOD,
            "app_key": config.app_key,
            "timestamp": datetime.now(UTC).strftime(TIME_FORMAT),
            "v": "2.0",
            "sign_method": config.sign_method,
            "format": "json",
            "start_modified": start.astimezone(UTC).strftime(TIME_FORMAT),
            "end_modified": end.astimezone(UTC).strftime(TIME_FORMAT),
            "page_no": str(page_no),
            "page_size": str(config.page_size),
            "use_has_next": "true",
        }
        if config.session:
            params["session"] = config.session
        params["sign"] = top_sign(params, self._secret, config.sign_method)
        url = str(config.base_url)
        try:
            # A refusal (OutboundRefused) is not Retryable: it ends the run, nothing sent.
            async with asyncio.timeout(config.timeout_s):
                await check_resolved(url, self._policy)
        except (TimeoutError, OSError) as exc:
            raise Retryable(f"cannot resolve the marketplace host: {exc}") from exc
        try:
            response = await self._http.get(url, params=params, timeout=config.timeout_s)
        except httpx.TimeoutException as exc:
            raise Retryable(f"timeout on page {page_no}") from exc
        except httpx.TransportError as exc:
            raise Retryable(f"transport error on page {page_no}: {exc}") from exc
        if response.status_code == 429:
            raise Retryable("rate limited", _retry_after(response.headers.get("retry-after")))
        if response.status_code >= 500:
            raise Retryable(f"marketplace answered {response.status_code}")
        if response.status_code != 200:
            raise PullError(f"marketplace answered {response.status_code}")
        body = response.json()
        if "error_response" in body:
            error = body["error_response"]
            if str(error.get("code")) in ("7", "520"):  # TOP: call limited / service busy
                raise Retryable(f"marketplace error {error.get('code')}")
            raise PullError(f"marketplace error {error.get('code')}: {error.get('msg')}")
        result = body.get("trades_sold_increment_get_response") or {}
        trades = (result.get("trades") or {}).get("trade") or []
        return Page(trades=list(trades), has_next=bool(result.get("has_next")))


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


@dataclass
class PullReport:
    pages: int = 0
    accepted: int = 0
    duplicate: int = 0
    updated: int = 0
    invalid: int = 0
    cursor: datetime | None = None


UowFactory = Callable[[], UnitOfWork]


async def pull_channel(
    uow_factory: UowFactory,
    channel: Channel,
    client: MarketplaceClient,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PullReport:
    """One incremental pull of ``channel``: every page of its window, then the cursor."""
    config = channel.settings.pull
    if config is None:
        raise PullError(f"channel {channel.name} has no pull configuration")
    async with uow_factory() as uow:
        repo = GatewayRepository(uow.session)
        cursor = await repo.pull_cursor(channel.name)
        mapping = await repo.sku_map(channel.name)
    end = now()
    base = cursor or end - timedelta(seconds=config.initial_lookback_s)
    start = base - timedelta(seconds=config.overlap_s)
    report = PullReport()
    page_no = 1
    while True:
        page = await client.page(start, end, page_no)
        report.pages += 1
        async with uow_factory() as uow:
            repo = GatewayRepository(uow.session)
            for trade in page.trades:
                tid = str(trade.get("tid", ""))[:128]
                try:
                    platform = from_top_trade(trade)
                except ValidationError as exc:
                    report.invalid += 1
                    detail = f"invalid trade {tid}: {exc.error_count()} error(s)"
                    await repo.record_delivery(channel.name, "invalid", detail, topic="pull")
                    continue
                incoming = apply_channel(platform, mapping, channel.settings.order_class_rules)
                done = await ingest(
                    uow, channel.name, incoming, delivery_id=tid, topic="pull", actor="marketplace"
                )
                setattr(report, done.status, getattr(report, done.status) + 1)
            await uow.commit()
        if not page.has_next or not page.trades:
            break
        page_no += 1
    async with uow_factory() as uow:
        await GatewayRepository(uow.session).save_pull_cursor(channel.name, end)
        await uow.commit()
    report.cursor = end
    return report


@dataclass
class PullScheduler:
    """The periodic job: runs every pull channel whose interval has elapsed."""

    uow_factory: UowFactory
    client_factory: Callable[[], httpx.AsyncClient] = httpx.AsyncClient
    #: Where marketplace requests may go (the composition root passes the settings').
    policy: OutboundPolicy = field(default_factory=OutboundPolicy)
    clock: Callable[[], float] = time.monotonic
    _last_run: dict[str, float] = field(default_factory=dict)
    _running: set[str] = field(default_factory=set)
    #: The last refusal per channel: logged and audited once, not at every interval.
    _refused: dict[str, str] = field(default_factory=dict)

    async def tick(self) -> None:
        async with self.uow_factory() as uow:
            channels = await GatewayRepository(uow.session).list_channels()
        due = [
            c
            for c in channels
            if c.type == "pull"
            and c.settings.pull is not None
            and c.name not in self._running
            and self.clock() - self._last_run.get(c.name, -1e18) >= c.settings.pull.interval_s
        ]
        if due:
            await asyncio.gather(*(self._run(c) for c in due))

    async def _run(self, channel: Channel) -> None:
        assert channel.settings.pull is not None
        self._running.add(channel.name)
        self._last_run[channel.name] = self.clock()
        try:
            async with self.client_factory() as http:
                client = MarketplaceClient(
                    http, channel.settings.pull, channel.secret, policy=self.policy
                )
                report = await pull_channel(self.uow_factory, channel, client)
            PULL_RUNS.labels(channel.name, "ok").inc()
            self._refused.pop(channel.name, None)
            log.info(
                "pulled channel %s: %d pages, %d new",
                channel.name,
                report.pages,
                report.accepted,
            )
        except OutboundRefused as exc:
            PULL_RUNS.labels(channel.name, "refused").inc()
            if self._refused.get(channel.name) != str(exc):
                self._refused[channel.name] = str(exc)
                log.warning("pull of channel %s refused, nothing sent: %s", channel.name, exc)
                await self._audit_refusal(channel, str(exc))
        except Exception:
            PULL_RUNS.labels(channel.name, "failed").inc()
            log.exception("pull of channel %s failed; retried next interval", channel.name)
        finally:
            self._running.discard(channel.name)

    async def _audit_refusal(self, channel: Channel, reason: str) -> None:
        """The refusal in the channel's delivery audit, where its operator looks."""
        try:
            async with self.uow_factory() as uow:
                await GatewayRepository(uow.session).record_delivery(
                    channel.name, "pull_refused", reason, topic="pull"
                )
                await uow.commit()
        except Exception:
            log.exception("could not audit the refused pull of channel %s", channel.name)
