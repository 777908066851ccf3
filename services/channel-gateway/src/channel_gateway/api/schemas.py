"""Request and response bodies of channel-gateway's API."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from channel_gateway.domain.config import (
    ChannelSettings,
    ChannelType,
    OrderClassRule,
    PullConfig,
    SplitShipment,
)

__all__ = ["ChannelType"]


class ChannelIn(ChannelSettings):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    #: The shared webhook (or API) secret; write-only, never returned.
    secret: str = Field(min_length=8, max_length=256, repr=False)


class ChannelPatch(BaseModel):
    """Only the fields given change; ``secret`` rotates the secret (still never returned)."""

    model_config = ConfigDict(extra="forbid")

    secret: str | None = Field(default=None, min_length=8, max_length=256, repr=False)
    clock_skew_s: int | None = Field(default=None, ge=0, le=86_400)
    split_shipment: SplitShipment | None = None
    order_class_rules: list[OrderClassRule] | None = Field(default=None, max_length=50)
    rate_limit_per_min: int | None = Field(default=None, ge=1, le=1_000_000)
    pull: PullConfig | None = None


class ChannelOut(ChannelSettings):
    name: str
    secret_set: bool = True


class SkuMapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: channel SKU -> our SKU
    mapping: dict[str, str] = Field(max_length=100_000)


class SkuMapOut(BaseModel):
    channel: str
    mapping: dict[str, str]


class WebhookAccepted(BaseModel):
    order_ref: uuid.UUID
    status: Literal["accepted", "duplicate", "updated"]


class PlatformAnswer(BaseModel):
    status: Literal["accepted", "duplicate", "updated", "ignored"]
    order_ref: uuid.UUID | None = None


class ImportRow(BaseModel):
    row: int
    status: Literal["accepted", "duplicate", "updated", "rejected"]
    order_ref: uuid.UUID | None = None
    column: str | None = None
    reason: str | None = None


class ImportResult(BaseModel):
    accepted: int = 0
    duplicate: int = 0
    updated: int = 0
    rejected: int = 0
    rows: list[ImportRow] = Field(default_factory=list)
