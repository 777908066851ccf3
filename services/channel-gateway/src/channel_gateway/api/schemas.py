"""Request and response bodies of channel-gateway's API."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ChannelType = Literal["generic"]


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    type: ChannelType = "generic"
    #: The shared webhook secret; write-only, never returned.
    secret: str = Field(min_length=8, max_length=256, repr=False)


class ChannelOut(BaseModel):
    name: str
    type: str
    secret_set: bool = True


class WebhookAccepted(BaseModel):
    order_ref: uuid.UUID
    status: Literal["accepted", "duplicate"]
