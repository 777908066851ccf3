"""Request and response bodies of ``/subscriptions``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from notifier.domain.rules import SUBSCRIBABLE_EVENT_TYPES


class WebhookTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook"]
    #: http or https; never link-local or metadata addresses.
    url: str = Field(min_length=1, max_length=2000)


class EmailTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["email"]
    address: str = Field(min_length=3, max_length=254)


class BoardTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["board"]


Target = Annotated[WebhookTarget | EmailTarget | BoardTarget, Field(discriminator="type")]

FilterValue = Annotated[str, Field(min_length=1, max_length=100)]


class SubscriptionFilter(BaseModel):
    """Only alerts about this channel and/or warehouse (unset: any)."""

    model_config = ConfigDict(extra="forbid")

    channel: FilterValue | None = None
    warehouse: FilterValue | None = None


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=200)] | None = None
    event_types: list[str] = Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE_EVENT_TYPES),
        description=f"Any of {', '.join(SUBSCRIBABLE_EVENT_TYPES)}",
    )
    filter: SubscriptionFilter = SubscriptionFilter()
    target: Target

    @field_validator("event_types")
    @classmethod
    def known_event_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SUBSCRIBABLE_EVENT_TYPES))
        if unknown:
            raise ValueError(
                f"unknown event types {unknown}; known: {', '.join(SUBSCRIBABLE_EVENT_TYPES)}"
            )
        return sorted(set(value))


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    name: str | None
    event_types: list[str]
    filter: SubscriptionFilter
    target: Target
    created_by: str
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    #: The webhook's HMAC key, shown this once (never in GET).
    secret: str | None = None
