"""The outside targets of deliveries: signed webhooks over HTTP, e-mail over SMTP.

Each send is one attempt with its own time limit; retrying is the worker's business.
A sender never raises for a failed attempt: it answers a :class:`SendResult` saying
what happened, so one broken target is one failed row, never a failed round.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import httpx

from notifier.domain.delivery import (
    DELIVERY_ID_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from oms_servicekit.outbound import OutboundPolicy, OutboundRefused, check_resolved


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status: int | None = None
    error: str | None = None
    #: Retrying cannot help (the target is forbidden or not configured for good).
    permanent: bool = False


class WebhookSender:
    """POSTs a signed JSON body; 2xx is delivered, anything else is a failed attempt."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        attempt_timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        user_agent: str = "oms-notifier",
    ) -> None:
        self._policy = policy
        self._attempt_timeout_s = attempt_timeout_s
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(attempt_timeout_s, connect=connect_timeout_s),
            follow_redirects=False,  # a redirect could lead anywhere the policy forbids
            headers={"User-Agent": user_agent},
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(
        self, url: str, *, secret: str, body: bytes, delivery_id: str, event: str, sent_at: datetime
    ) -> SendResult:
        try:
            async with asyncio.timeout(self._attempt_timeout_s):
                # Checked at every attempt: a name can resolve somewhere else than when
                # the subscription was made (DNS rebinding to a metadata address).
                await check_resolved(url, self._policy)
                response = await self._client.post(
                    url,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        SIGNATURE_HEADER: sign(secret, body),
                        TIMESTAMP_HEADER: str(int(sent_at.timestamp())),
                        DELIVERY_ID_HEADER: delivery_id,
                        EVENT_HEADER: event,
                    },
                )
        except OutboundRefused as exc:
            return SendResult(False, error=str(exc), permanent=True)
        except TimeoutError:
            return SendResult(False, error="timed out")
        except httpx.HTTPError as exc:
            return SendResult(False, error=f"{type(exc).__name__}: {exc}"[:300])
        except OSError as exc:
            return SendResult(False, error=f"{type(exc).__name__}: {exc}"[:300])
        if 200 <= response.status_code < 300:
            return SendResult(True, status=response.status_code)
        return SendResult(False, status=response.status_code, error=f"HTTP {response.status_code}")


@dataclass(frozen=True)
class SmtpConfig:
    """Where mail goes, from ``SMTP_URL``: ``smtp://[user:pass@]host[:port][?starttls=1]``
    or ``smtps://...`` (TLS from the first byte)."""

    hostname: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://host:port or smtps://host:port")
        query = parse_qs(parts.query)
        implicit = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit,
            start_tls=query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes"),
        )


class SmtpSender:
    """Sends plain-text mail through one SMTP server (aiosmtplib)."""

    def __init__(self, url: str, *, sender: str, timeout_s: float = 10.0) -> None:
        self._config = SmtpConfig.from_url(url) if url else None
        self._sender = sender
        self._timeout_s = timeout_s

    async def send(self, to: str, *, subject: str, body: str, delivery_id: str) -> SendResult:
        config = self._config
        if config is None:
            # Not permanent: mail waits (up to the give-up time) for SMTP_URL to be set.
            return SendResult(False, error="SMTP_URL is not set")
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = f"<{delivery_id}@oms-notifier>"
        message["X-OMS-Delivery-Id"] = delivery_id
        message.set_content(body)
        try:
            async with asyncio.timeout(self._timeout_s):
                await aiosmtplib.send(
                    message,
                    hostname=config.hostname,
                    port=config.port,
                    username=config.username,
                    password=config.password,
                    use_tls=config.use_tls,
                    start_tls=config.start_tls,
                    timeout=self._timeout_s,
                )
        except TimeoutError:
            return SendResult(False, error="timed out")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return SendResult(False, error=f"{type(exc).__name__}: {exc}"[:300])
        return SendResult(True)
