"""Request and response bodies of customer-svc's API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResolveIn(Strict):
    channel: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    platform_user_id: str = Field(min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)


class ResolveOut(BaseModel):
    customer_id: uuid.UUID
    matched_by: Literal["platform_id", "phone", "email", "new"]


class IdentityOut(BaseModel):
    channel: str
    platform_user_id: str
    name: str | None
    phone: str | None
    email: str | None
    created_at: datetime


class CustomerOut(BaseModel):
    id: uuid.UUID
    display_name: str | None
    phone: str | None
    email: str | None
    created_at: datetime
    updated_at: datetime
    identities: list[IdentityOut]
