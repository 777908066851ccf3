"""Request and response bodies of customer-svc's API."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, time
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(Strict):
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    region: str = Field(min_length=1, max_length=100)
    city: str | None = Field(default=None, max_length=100)
    line1: str | None = Field(default=None, max_length=300)
    postal_code: str | None = Field(default=None, max_length=20)


class ResolveIn(Strict):
    channel: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    platform_user_id: str = Field(min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)
    address: AddressIn | None = None


class MergeProposalOut(BaseModel):
    id: uuid.UUID
    candidate_id: uuid.UUID
    name_score: float
    address_score: float


class ResolveOut(BaseModel):
    customer_id: uuid.UUID
    matched_by: Literal["platform_id", "phone", "email", "new"]
    merge_proposal: MergeProposalOut | None = None


class IdentityOut(BaseModel):
    channel: str
    platform_user_id: str
    name: str | None
    phone: str | None
    email: str | None
    created_at: datetime


class DeliveryWindow(Strict):
    #: Local delivery hours, "HH:MM".
    start: time
    end: time
    weekdays: list[int] = Field(default=[1, 2, 3, 4, 5, 6, 7])

    @field_validator("weekdays")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 or d > 7 for d in v):
            raise ValueError("weekdays are 1 (Monday) to 7 (Sunday), at least one")
        return sorted(set(v))

    @model_validator(mode="after")
    def _order(self) -> DeliveryWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class DeliveryRequirements(Strict):
    cold_chain: bool = False
    fragile: bool = False
    signature: bool = False
    window: DeliveryWindow | None = None


#: Chinese unified social credit code (18) or a generic 8-20 alphanumeric tax id.
_TAX_ID = re.compile(r"^[0-9A-Z]{8,20}$")


class Invoice(Strict):
    title: str = Field(min_length=1, max_length=200)
    tax_id: str = Field(min_length=1, max_length=20)

    @field_validator("tax_id")
    @classmethod
    def _tax_id(cls, v: str) -> str:
        v = v.strip().upper()
        if not _TAX_ID.match(v):
            raise ValueError("tax id must be 8 to 20 letters or digits")
        return v

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("title must not be blank")
        return v


class CustomerPatch(Strict):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    delivery_requirements: DeliveryRequirements | None = None
    invoice: Invoice | None = None
    default_address: AddressIn | None = None
    preferences: dict[str, str | int | bool] | None = None


class CustomerOut(BaseModel):
    id: uuid.UUID
    display_name: str | None
    phone: str | None
    email: str | None
    created_at: datetime
    updated_at: datetime
    merged_into: uuid.UUID | None = None
    identities: list[IdentityOut]
    delivery_requirements: dict[str, Any] = {}
    invoice: dict[str, Any] | None = None
    default_address: dict[str, Any] | None = None
    preferences: dict[str, Any] = {}


class MergeIn(Strict):
    surviving_id: uuid.UUID
    merged_id: uuid.UUID


class MergeOut(BaseModel):
    merge_id: uuid.UUID
    surviving_id: uuid.UUID
    merged_id: uuid.UUID


class TagOut(BaseModel):
    tag: str
    source: Literal["rule", "operator"]
    rule: str | None
    tagged_at: datetime


_TAG = r"^[a-z0-9][a-z0-9_:-]{0,63}$"


class TagsIn(Strict):
    add: list[str] = []
    remove: list[str] = []

    @field_validator("add", "remove")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        for tag in v:
            if not re.match(_TAG, tag):
                raise ValueError(f"invalid tag {tag!r}")
        return sorted(set(v))


class TagRuleIn(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    tag: str = Field(pattern=_TAG)
    expression: str = Field(min_length=1, max_length=2000)


class TagRulesIn(Strict):
    rules: list[TagRuleIn]


class ComplaintIn(Strict):
    order_id: uuid.UUID | None = None
    category: str = Field(default="other", min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=4000)


class ComplaintOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID | None
    category: str
    text: str
    created_at: datetime


class OrderSummaryOut(BaseModel):
    order_id: uuid.UUID
    channel: str
    total: Decimal
    currency: str
    status: str
    delivery_requirements: list[str]
    ordered_at: datetime


class OrderHistoryOut(BaseModel):
    count: int
    value: Decimal
    cancelled: int
    last_orders: list[OrderSummaryOut]


class CardOut(BaseModel):
    customer: CustomerOut
    addresses: list[dict[str, Any]]
    tags: list[TagOut]
    orders: OrderHistoryOut
    complaints: list[ComplaintOut]
    open_merge_proposals: list[MergeProposalOut]


class ChannelPolicyIn(Strict):
    #: Dotted profile fields this channel requires, e.g. "invoice.tax_id".
    required_fields: list[str]

    @field_validator("required_fields")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [f for f in v if f.split(".")[0] not in _PROFILE_FIELDS]
        if unknown:
            raise ValueError(f"unknown profile field(s): {', '.join(unknown)}")
        return v


_PROFILE_FIELDS = {
    "display_name",
    "delivery_requirements",
    "invoice",
    "default_address",
    "preferences",
}


class ImportRowOut(BaseModel):
    row: int
    outcome: Literal["created", "matched", "merge_proposed", "rejected"]
    customer_id: uuid.UUID | None = None
    matched_by: str | None = None
    merge_proposal: MergeProposalOut | None = None
    reason: str | None = None
