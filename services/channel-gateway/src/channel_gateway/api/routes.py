"""channel-gateway HTTP API: channel configuration and signed order webhooks."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from channel_gateway.adapters.repository import Channel, GatewayRepository
from channel_gateway.api.schemas import ChannelIn, ChannelOut, WebhookAccepted
from channel_gateway.domain.canonical import CanonicalOrder
from channel_gateway.domain.signature import SignatureError, verify
from channel_gateway.settings import GatewaySettings
from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "bad, missing or stale signature"},
    404: {"description": "unknown channel"},
    413: {"description": "body too large"},
    415: {"description": "not JSON"},
    422: {"description": "invalid order"},
}


def build_router(settings: GatewaySettings) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/channels",
        status_code=201,
        response_model=ChannelOut,
        tags=["channels"],
        responses={409: {"description": "the channel exists"}},
    )
    async def add_channel(body: ChannelIn, runtime: RuntimeDep) -> ChannelOut:
        async with runtime.uow() as uow:
            if not await GatewayRepository(uow.session).add_channel(
                Channel(body.name, body.type, body.secret)
            ):
                raise Problem(409, f"channel {body.name} already exists", field="name")
            await uow.commit()
        return ChannelOut(name=body.name, type=body.type)

    @router.get("/channels", response_model=list[ChannelOut], tags=["channels"])
    async def list_channels(runtime: RuntimeDep) -> list[ChannelOut]:
        async with runtime.uow() as uow:
            channels = await GatewayRepository(uow.session).list_channels()
        return [ChannelOut(name=c.name, type=c.type) for c in channels]

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
        """A channel's order, signed with the channel's secret.

        Answered 2xx only after the order and its `OrderReceived` event are committed
        together, so nothing acknowledged is ever lost; the same channel order id again
        is answered with the same order reference and creates nothing.
        """
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise Problem(415, "content type must be application/json")
        raw = await _read_body(request, settings.max_body_bytes)
        async with runtime.uow() as uow:
            repo = GatewayRepository(uow.session)
            known = await repo.get_channel(channel)
            if known is None:
                raise Problem(404, f"unknown channel {channel}")
            try:
                verify(
                    known.secret,
                    x_oms_signature,
                    raw,
                    now=int(time.time()),
                    tolerance_s=settings.signature_tolerance_s,
                )
            except SignatureError as exc:
                await repo.record_delivery(channel, "signature_rejected", str(exc))
                await uow.commit()
                raise Problem(401, str(exc), field="X-OMS-Signature") from exc
            try:
                order = CanonicalOrder.model_validate_json(raw)
            except ValidationError as exc:
                await repo.record_delivery(channel, "invalid")
                await uow.commit()
                raise RequestValidationError(
                    exc.errors(include_input=False, include_url=False)
                ) from exc

            order_id = await repo.claim_channel_order(channel, order.channel_order_id, uuid.uuid4())
            if order_id is None:
                existing = await repo.order_ref_of(channel, order.channel_order_id)
                await repo.record_delivery(channel, "duplicate", order_id=existing)
                await uow.commit()
                body = WebhookAccepted(order_ref=existing, status="duplicate")  # type: ignore[arg-type]
                return JSONResponse(body.model_dump(mode="json"), status_code=200)

            await uow.emit(
                order.to_event(channel=channel, order_id=order_id, received_at=datetime.now(UTC))
            )
            await repo.record_delivery(channel, "accepted", order_id=order_id)
            await uow.commit()
        accepted = WebhookAccepted(order_ref=order_id, status="accepted")
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    return router


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
