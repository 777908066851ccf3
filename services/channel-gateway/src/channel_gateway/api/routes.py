"""channel-gateway HTTP API: channel configuration, signed order webhooks, imports."""

from __future__ import annotations

import asyncio
import json
import math
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from channel_gateway.adapters.channel_cache import ChannelCache
from channel_gateway.adapters.repository import Channel, ChannelConfig, GatewayRepository
from channel_gateway.api.roles import ADMIN_IN_JWT_MODE, ChannelsAdmin, RequestActor
from channel_gateway.api.schemas import (
    ChannelIn,
    ChannelOut,
    ChannelPatch,
    ImportResult,
    ImportRow,
    PlatformAnswer,
    SkuMapIn,
    SkuMapOut,
    WebhookAccepted,
)
from channel_gateway.domain.audit_views import channel_change, channel_view, sku_map_change
from channel_gateway.domain.canonical import CanonicalOrder
from channel_gateway.domain.config import ChannelSettings
from channel_gateway.domain.platforms import (
    SHOPIFY_TOPICS,
    WOOCOMMERCE_TOPICS,
    PlatformOrder,
    apply_channel,
    from_shopify,
    from_woocommerce,
)
from channel_gateway.domain.signature import SignatureError, verify, verify_platform
from channel_gateway.imports import CSV_TYPES, XLSX_TYPE, csv_rows, parse_row, xlsx_rows
from channel_gateway.ingest import ingest, ingest_many
from channel_gateway.service_layer.webhook_batcher import WebhookBatcher
from channel_gateway.settings import GatewaySettings
from oms_servicekit.audit import record_audit
from oms_servicekit.http import RuntimeDep
from oms_servicekit.outbound import OutboundPolicy, OutboundRefused
from oms_servicekit.problems import Problem

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "bad, missing or stale signature"},
    404: {"description": "unknown channel"},
    413: {"description": "body too large"},
    415: {"description": "not JSON"},
    422: {"description": "invalid order"},
    429: {"description": "the channel's rate limit is exceeded (see Retry-After)"},
}
IMPORT_BATCH = 250


class RateLimiter:
    """Per-channel token buckets (per process): ``limit`` requests a minute, burst ``limit``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, channel: str, per_minute: int | None) -> None:
        if per_minute is None:
            return
        now = self._clock()
        rate = per_minute / 60.0
        tokens, at = self._buckets.get(channel, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - at) * rate)
        if tokens < 1.0:
            self._buckets[channel] = (tokens, now)
            retry = max(1, math.ceil((1.0 - tokens) / rate))
            raise Problem(
                429,
                f"rate limit of channel {channel} exceeded",
                headers={"Retry-After": str(retry)},
            )
        self._buckets[channel] = (tokens - 1.0, now)


#: What answers show instead of a marketplace session key (it is write-only).
HIDDEN = "***"


def _out(channel: Channel) -> ChannelOut:
    data = channel.settings.model_dump() | {
        "name": channel.name,
        "secret_set": bool(channel.secret),
    }
    if data.get("pull") and data["pull"].get("session"):
        data["pull"] = data["pull"] | {"session": HIDDEN}
    try:
        return ChannelOut.model_validate(data | {"type": channel.type})
    except ValidationError:  # a channel stored before channel types were checked
        return ChannelOut.model_validate(data)


def _check_pull_target(config: ChannelSettings, policy: OutboundPolicy) -> None:
    """A pull channel's marketplace URL must pass the outbound policy (422 naming it)."""
    if config.pull is not None:
        try:
            policy.check_url(str(config.pull.base_url))
        except OutboundRefused as exc:
            raise Problem(422, str(exc), field="pull.base_url") from exc


def build_router(settings: GatewaySettings, cache: ChannelCache | None = None) -> APIRouter:
    """The gateway's routes; webhooks read channels through ``cache``, which every route
    changing a channel invalidates once its change is committed (so a rotated secret
    applies to the next request of this process)."""
    router = APIRouter()
    limiter = RateLimiter()
    outbound = settings.outbound_policy()
    channels = cache or ChannelCache(settings.channel_cache_ttl_s)
    webhooks = WebhookBatcher()

    # -- channels ---------------------------------------------------------------------

    @router.post(
        "/channels",
        status_code=201,
        response_model=ChannelOut,
        tags=["channels"],
        responses={409: {"description": "the channel exists"}},
        dependencies=ADMIN_IN_JWT_MODE,
    )
    async def add_channel(body: ChannelIn, runtime: RuntimeDep, actor: RequestActor) -> ChannelOut:
        config = ChannelSettings.model_validate(body.model_dump(exclude={"name", "secret"}))
        _check_pull_target(config, outbound)
        channel = Channel(body.name, body.type, body.secret, config)
        async with runtime.uow() as uow:
            if not await GatewayRepository(uow.session).add_channel(channel):
                raise Problem(409, f"channel {body.name} already exists", field="name")
            await record_audit(
                uow.session,
                actor=actor,
                action="create",
                entity="channel",
                entity_id=body.name,
                before=None,
                after=channel_view(
                    config.model_copy(update={"type": body.type}), secret=body.secret
                ),
            )
            await uow.commit()
        channels.invalidate(body.name)
        return _out(channel)

    @router.get(
        "/channels",
        response_model=list[ChannelOut],
        tags=["channels"],
        dependencies=ADMIN_IN_JWT_MODE,
    )
    async def list_channels(runtime: RuntimeDep) -> list[ChannelOut]:
        async with runtime.uow() as uow:
            channels = await GatewayRepository(uow.session).list_channels()
        return [_out(c) for c in channels]

    @router.get(
        "/channels/{channel}",
        response_model=ChannelOut,
        tags=["channels"],
        responses={404: _PROBLEMS[404]},
        dependencies=ADMIN_IN_JWT_MODE,
    )
    async def get_channel(channel: str, runtime: RuntimeDep) -> ChannelOut:
        async with runtime.uow() as uow:
            known = await GatewayRepository(uow.session).get_channel(channel)
        if known is None:
            raise Problem(404, f"unknown channel {channel}")
        return _out(known)

    @router.patch(
        "/channels/{channel}",
        response_model=ChannelOut,
        tags=["channels"],
        responses={404: _PROBLEMS[404]},
        dependencies=ADMIN_IN_JWT_MODE,
    )
    async def patch_channel(
        channel: str, body: ChannelPatch, runtime: RuntimeDep, actor: RequestActor
    ) -> ChannelOut:
        async with runtime.uow() as uow:
            repo = GatewayRepository(uow.session)
            known = await repo.get_channel(channel)
            if known is None:
                raise Problem(404, f"unknown channel {channel}")
            changes = body.model_dump(exclude_unset=True, exclude={"secret"})
            pull_change = changes.get("pull")
            if pull_change and pull_change.get("session") == HIDDEN and known.settings.pull:
                # A client sending back what GET showed keeps the stored session key.
                pull_change["session"] = known.settings.pull.session
            merged = known.settings.model_dump() | changes
            try:
                config = ChannelSettings.model_validate(merged)
            except ValidationError as exc:
                raise RequestValidationError(
                    exc.errors(include_input=False, include_url=False)
                ) from exc
            if "pull" in changes:
                _check_pull_target(config, outbound)
            await repo.update_channel(channel, config, body.secret)
            change = channel_change(
                known.settings,
                config,
                secret_before=known.secret,
                secret_after=body.secret or known.secret,
            )
            if change is not None:
                await record_audit(
                    uow.session,
                    actor=actor,
                    action="update",
                    entity="channel",
                    entity_id=channel,
                    before=change[0],
                    after=change[1],
                )
            await uow.commit()
        channels.invalidate(channel)
        return _out(Channel(channel, config.type, body.secret or known.secret, config))

    @router.put(
        "/channels/{channel}/sku-map",
        response_model=SkuMapOut,
        tags=["channels"],
        responses={404: _PROBLEMS[404]},
        dependencies=ADMIN_IN_JWT_MODE,
    )
    async def put_sku_map(
        channel: str, body: SkuMapIn, runtime: RuntimeDep, actor: RequestActor
    ) -> SkuMapOut:
        for key, value in body.mapping.items():
            if not (0 < len(key) <= 128 and 0 < len(value) <= 64):
                raise Problem(422, f"invalid SKU mapping {key!r}", field=f"mapping.{key}")
        async with runtime.uow() as uow:
            repo = GatewayRepository(uow.session)
            if await repo.get_channel(channel) is None:
                raise Problem(404, f"unknown channel {channel}")
            change = sku_map_change(await repo.sku_map(channel), body.mapping)
            await repo.replace_sku_map(channel, body.mapping)
            if change is not None:
                await record_audit(
                    uow.session,
                    actor=actor,
                    action="put_sku_map",
                    entity="channel",
                    entity_id=channel,
                    before=change[0],
                    after=change[1],
                )
            await uow.commit()
        channels.invalidate(channel)
        return SkuMapOut(channel=channel, mapping=body.mapping)

    @router.get(
        "/channels/{channel}/sku-map",
        response_model=SkuMapOut,
        tags=["channels"],
        responses={404: _PROBLEMS[404]},
        dependencies=ADMIN_IN_JWT_MODE,
    )
    async def get_sku_map(channel: str, runtime: RuntimeDep) -> SkuMapOut:
        async with runtime.uow() as uow:
            repo = GatewayRepository(uow.session)
            if await repo.get_channel(channel) is None:
                raise Problem(404, f"unknown channel {channel}")
            mapping = await repo.sku_map(channel)
        return SkuMapOut(channel=channel, mapping=mapping)

    @router.get("/channels/{channel}/deliveries", tags=["channels"], dependencies=ADMIN_IN_JWT_MODE)
    async def list_deliveries(
        channel: str, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        """The delivery audit of a channel, newest first."""
        async with runtime.uow() as uow:
            rows = await GatewayRepository(uow.session).deliveries(channel, limit)
        return [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
            | {"order_id": str(row["order_id"]) if row["order_id"] else None}
            for row in rows
        ]

    # -- webhooks ---------------------------------------------------------------------

    @router.post(
        "/webhooks/{channel}",
        status_code=202,
        response_model=WebhookAccepted,
        tags=["webhooks"],
        responses={200: {"model": WebhookAccepted, "description": "duplicate"}, **_PROBLEMS},
    )
    async def receive_order(
        channel: str,
        request: Request,
        runtime: RuntimeDep,
        x_oms_signature: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """A channel's order in canonical form, signed with the channel's secret.

        Answered 2xx only after the order and its `OrderReceived` event are committed
        together, so nothing acknowledged is ever lost; the same channel order id again
        is answered with the same order reference and creates nothing.
        """
        raw = await _checked_body(runtime, channel, request, settings.max_body_bytes)
        async with runtime.uow() as uow:
            repo = GatewayRepository(uow.session)
            config = await _channel_of(channels, repo, channel, "generic")
            known = config.channel
            try:
                verify(
                    known.secret,
                    x_oms_signature,
                    raw,
                    now=int(time.time()),
                    tolerance_s=_skew(known, settings),
                )
            except SignatureError as exc:
                await repo.record_delivery(channel, "signature_rejected", str(exc))
                await uow.commit()
                raise Problem(401, str(exc), field="X-OMS-Signature") from exc
            await _rate_limit(limiter, uow, repo, known)
            try:
                order = CanonicalOrder.model_validate_json(raw)
            except ValidationError as exc:
                await repo.record_delivery(channel, "invalid")
                await uow.commit()
                raise RequestValidationError(
                    exc.errors(include_input=False, include_url=False)
                ) from exc
            incoming = apply_channel(
                PlatformOrder.of_canonical(order), config.sku_map, known.settings.order_class_rules
            )
        # Nothing was written above: the order is committed in the next group commit.
        result = await webhooks.ingest(runtime.uow, channel, incoming)
        answer = WebhookAccepted(order_ref=result.order_ref, status=result.status)
        return JSONResponse(
            answer.model_dump(mode="json"), status_code=202 if result.status == "accepted" else 200
        )

    @router.post(
        "/webhooks/shopify/{channel}",
        response_model=PlatformAnswer,
        tags=["webhooks"],
        responses=_PROBLEMS,
    )
    async def receive_shopify(
        channel: str,
        request: Request,
        runtime: RuntimeDep,
        x_shopify_hmac_sha256: Annotated[str | None, Header()] = None,
        x_shopify_topic: Annotated[str | None, Header()] = None,
        x_shopify_webhook_id: Annotated[str | None, Header()] = None,
        x_shopify_event_id: Annotated[str | None, Header()] = None,
        x_shopify_triggered_at: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """A Shopify `orders/create|paid|cancelled|updated` webhook (answered 200 quickly)."""
        return await _platform_delivery(
            runtime,
            channel,
            request,
            platform="shopify",
            signature=x_shopify_hmac_sha256,
            signature_header="X-Shopify-Hmac-Sha256",
            topic=x_shopify_topic,
            topics=SHOPIFY_TOPICS,
            delivery_id=x_shopify_webhook_id or x_shopify_event_id,
            triggered_at=x_shopify_triggered_at,
            mapper=lambda data, topic: from_shopify(data, topic),
        )

    @router.post(
        "/webhooks/woocommerce/{channel}",
        response_model=PlatformAnswer,
        tags=["webhooks"],
        responses=_PROBLEMS,
    )
    async def receive_woocommerce(
        channel: str,
        request: Request,
        runtime: RuntimeDep,
        x_wc_webhook_signature: Annotated[str | None, Header()] = None,
        x_wc_webhook_topic: Annotated[str | None, Header()] = None,
        x_wc_webhook_delivery_id: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """A WooCommerce `order.created|order.updated` webhook."""
        return await _platform_delivery(
            runtime,
            channel,
            request,
            platform="woocommerce",
            signature=x_wc_webhook_signature,
            signature_header="X-WC-Webhook-Signature",
            topic=x_wc_webhook_topic,
            topics=WOOCOMMERCE_TOPICS,
            delivery_id=x_wc_webhook_delivery_id,
            triggered_at=None,
            mapper=lambda data, topic: from_woocommerce(data),
        )

    async def _platform_delivery(
        runtime: Any,
        channel: str,
        request: Request,
        *,
        platform: str,
        signature: str | None,
        signature_header: str,
        topic: str | None,
        topics: tuple[str, ...],
        delivery_id: str | None,
        triggered_at: str | None,
        mapper: Callable[[dict[str, Any], str], PlatformOrder],
    ) -> JSONResponse:
        raw = await _checked_body(runtime, channel, request, settings.max_body_bytes)
        async with runtime.uow() as uow:
            repo = GatewayRepository(uow.session)
            config = await _channel_of(channels, repo, channel, platform)
            known = config.channel
            try:
                verify_platform(known.secret, signature, raw, header=signature_header)
                _check_fresh(triggered_at, _skew(known, settings))
            except SignatureError as exc:
                await repo.record_delivery(
                    channel, "signature_rejected", str(exc), delivery_id=delivery_id, topic=topic
                )
                await uow.commit()
                raise Problem(401, str(exc), field=signature_header) from exc
            await _rate_limit(limiter, uow, repo, known, delivery_id=delivery_id, topic=topic)
            if topic not in topics:
                await repo.record_delivery(
                    channel, "ignored", f"topic {topic}", delivery_id=delivery_id, topic=topic
                )
                await uow.commit()
                return _answer(PlatformAnswer(status="ignored"))
            if delivery_id and not await repo.claim_delivery_id(channel, delivery_id):
                ref = await repo.delivery_order(channel, delivery_id)
                await repo.record_delivery(
                    channel, "replay", order_id=ref, delivery_id=delivery_id, topic=topic
                )
                await uow.commit()
                return _answer(PlatformAnswer(status="duplicate", order_ref=ref))
            try:
                data = json.loads(raw, parse_float=Decimal)
                if not isinstance(data, dict):
                    raise ValueError("the body is not a JSON object")
                platform_order = mapper(data, topic)
            except ValidationError as exc:
                await uow.rollback()
                await repo.record_delivery(channel, "invalid", delivery_id=delivery_id, topic=topic)
                await uow.commit()
                raise RequestValidationError(
                    exc.errors(include_input=False, include_url=False)
                ) from exc
            except ValueError as exc:
                await uow.rollback()
                await repo.record_delivery(
                    channel, "invalid", "malformed JSON", delivery_id=delivery_id, topic=topic
                )
                await uow.commit()
                raise Problem(422, f"malformed JSON: {exc}"[:200]) from exc
            incoming = apply_channel(
                platform_order, config.sku_map, known.settings.order_class_rules
            )
            result = await ingest(
                uow,
                channel,
                incoming,
                delivery_id=delivery_id,
                topic=topic,
                actor=platform,
                link_delivery=bool(delivery_id),
            )
            await uow.commit()
        return _answer(PlatformAnswer(status=result.status, order_ref=result.order_ref))

    # -- bulk import ------------------------------------------------------------------

    @router.post(
        "/imports/orders",
        response_model=ImportResult,
        tags=["imports"],
        responses={404: _PROBLEMS[404], 413: _PROBLEMS[413], 415: {"description": "not CSV/XLSX"}},
    )
    async def import_orders(
        request: Request,
        runtime: RuntimeDep,
        operator: ChannelsAdmin,
        channel: Annotated[str, Query(min_length=1, max_length=64)],
    ) -> ImportResult:
        """Orders from a CSV or XLSX file (one single-line order per row), streamed.

        The body is spooled (to disk past 1 MiB) and read row by row; rows are ingested
        in batches, each batch in one transaction. Every row gets an answer. The import
        is audited as one row (file name and size, rows per outcome), written once the
        rows are done, or when a failure stops it half-way (``complete: false``), since
        the batches before stay.
        """
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in (*CSV_TYPES, XLSX_TYPE):
            raise Problem(415, "content type must be text/csv or an XLSX spreadsheet")
        async with runtime.uow() as uow:
            repo = GatewayRepository(uow.session)
            known = await repo.get_channel(channel)
            if known is None:
                raise Problem(404, f"unknown channel {channel}", field="channel")
            mapping = await repo.sku_map(channel)
        result = ImportResult()
        with tempfile.SpooledTemporaryFile(max_size=1_048_576) as spool:
            await _spool(request, spool, settings.max_import_bytes)
            size = spool.tell()
            spool.seek(0)
            rows = xlsx_rows(spool) if media == XLSX_TYPE else csv_rows(spool)
            complete = False
            try:
                while True:
                    batch = await asyncio.to_thread(_next_batch, rows, IMPORT_BATCH)
                    if not batch:
                        break
                    valid = [(number, row) for number, row, _, _ in batch if row is not None]
                    rules = known.settings.order_class_rules
                    async with runtime.uow() as uow:
                        done = await ingest_many(
                            uow,
                            channel,
                            [apply_channel(row.to_platform(), mapping, rules) for _, row in valid],
                            topic="import",
                            actor=operator,
                        )
                        await uow.commit()
                    answers = {
                        number: ImportRow(row=number, status=d.status, order_ref=d.order_ref)
                        for (number, _), d in zip(valid, done, strict=True)
                    }
                    for number, row, column, reason in batch:
                        result.rows.append(
                            answers[number]
                            if row is not None
                            else ImportRow(
                                row=number, status="rejected", column=column, reason=reason
                            )
                        )
                complete = True
            finally:
                if result.rows:
                    await _audit_import(
                        runtime,
                        operator,
                        channel,
                        file_name=_file_name(request),
                        size=size,
                        rows=result.rows,
                        complete=complete,
                    )
        for row_result in result.rows:
            setattr(result, row_result.status, getattr(result, row_result.status) + 1)
        return result

    return router


async def _audit_import(
    runtime: Any,
    actor: str,
    channel: str,
    *,
    file_name: str | None,
    size: int,
    rows: list[ImportRow],
    complete: bool,
) -> None:
    """The import's one audit row, in its own transaction (each batch had its own)."""
    counts = dict.fromkeys(("accepted", "duplicate", "updated", "rejected"), 0)
    for row in rows:
        counts[row.status] += 1
    async with runtime.uow() as uow:
        await record_audit(
            uow.session,
            actor=actor,
            action="import_orders",
            entity="import",
            entity_id=uuid.uuid4(),
            before=None,
            after={
                "channel": channel,
                "file_name": file_name,
                "bytes": size,
                "rows": len(rows),
                "complete": complete,
                **counts,
            },
        )
        await uow.commit()


_FILE_NAME = re.compile(r'filename="?([^";]{1,255})"?', re.IGNORECASE)


def _file_name(request: Request) -> str | None:
    """The uploaded file's name, when the client sends one (``Content-Disposition``)."""
    found = _FILE_NAME.search(request.headers.get("content-disposition", ""))
    return found.group(1).strip() if found else None


def _next_batch(
    rows: Iterator[tuple[int, dict[str, Any]]], size: int
) -> list[tuple[int, Any, str | None, str | None]]:
    batch = []
    for number, values in rows:
        batch.append(parse_row(number, values))
        if len(batch) >= size:
            break
    return batch


def _answer(answer: PlatformAnswer) -> JSONResponse:
    return JSONResponse(answer.model_dump(mode="json"), status_code=200)


def _skew(channel: Channel, settings: GatewaySettings) -> int:
    skew = channel.settings.clock_skew_s
    return settings.signature_tolerance_s if skew is None else skew


def _check_fresh(triggered_at: str | None, tolerance_s: int) -> None:
    """A platform's delivery timestamp, when it sends one, must be recent."""
    if not triggered_at:
        return
    try:
        moment = datetime.fromisoformat(triggered_at.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignatureError("malformed delivery timestamp") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if abs((datetime.now(UTC) - moment).total_seconds()) > tolerance_s:
        raise SignatureError("delivery timestamp outside the allowed window (replay?)")


async def _channel_of(
    cache: ChannelCache, repo: GatewayRepository, channel: str, kind: str
) -> ChannelConfig:
    """The channel a webhook names, with its SKU map (cached: no statement when warm)."""
    config = await cache.get(repo, channel)
    if config is None or not _serves(config.channel.type, kind):
        raise Problem(404, f"unknown {kind} channel {channel}")
    return config


def _serves(channel_type: str, kind: str) -> bool:
    """A channel's webhooks are its type's; a pull channel also takes generic pushes."""
    return channel_type == kind or (kind == "generic" and channel_type == "pull")


async def _rate_limit(
    limiter: RateLimiter,
    uow: Any,
    repo: GatewayRepository,
    channel: Channel,
    *,
    delivery_id: str | None = None,
    topic: str | None = None,
) -> None:
    try:
        limiter.check(channel.name, channel.settings.rate_limit_per_min)
    except Problem:
        await repo.record_delivery(
            channel.name, "rate_limited", delivery_id=delivery_id, topic=topic
        )
        await uow.commit()
        raise


async def _checked_body(runtime: Any, channel: str, request: Request, limit: int) -> bytes:
    """The raw body of a JSON delivery; a refused one (415, 413) is audited too."""
    try:
        _require_json(request)
        return await _read_body(request, limit)
    except Problem as exc:
        async with runtime.uow() as uow:
            await GatewayRepository(uow.session).record_delivery(
                channel[:64], f"refused_{exc.status}", exc.detail
            )
            await uow.commit()
        raise


def _require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise Problem(415, "content type must be application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _spool(request: Request, spool: IO[bytes], limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"body larger than {limit} bytes")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"body larger than {limit} bytes")
        spool.write(chunk)
