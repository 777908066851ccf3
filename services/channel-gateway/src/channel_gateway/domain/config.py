"""A channel's configuration: what kind of partner it is and how its orders are shaped.

Pure data and rules; the API validates it with these models and the repository stores it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

ChannelType = Literal["generic", "shopify", "woocommerce", "pull"]
SplitShipment = Literal["allow", "forbid", "by_warehouse"]
Priority = Literal["normal", "urgent"]


class OrderClassRule(BaseModel):
    """``priority`` applies when the order's ``attribute`` contains ``contains`` (case-blind).

    E.g. ``{"attribute": "shipping_method", "contains": "express", "priority": "urgent"}``.
    """

    model_config = ConfigDict(extra="forbid")

    attribute: Literal["shipping_method", "delivery_requirement", "tag"]
    contains: str = Field(min_length=1, max_length=100)
    priority: Priority = "urgent"


class PullConfig(BaseModel):
    """A marketplace polled for changed orders (Taobao TOP style signed requests)."""

    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl
    app_key: str = Field(min_length=1, max_length=128)
    session: str | None = Field(default=None, max_length=256)
    sign_method: Literal["md5", "hmac-sha256"] = "md5"
    interval_s: float = Field(default=60, ge=0.05, le=3600)
    page_size: int = Field(default=50, ge=1, le=100)
    overlap_s: int = Field(default=300, ge=0, le=86_400)
    #: Where a first pull starts, as seconds before now.
    initial_lookback_s: int = Field(default=86_400, ge=0)
    timeout_s: float = Field(default=10, gt=0, le=120)


class ChannelSettings(BaseModel):
    """Everything of a channel but its name and secret."""

    type: ChannelType = "generic"
    clock_skew_s: int | None = Field(default=None, ge=0, le=86_400)
    split_shipment: SplitShipment = "allow"
    order_class_rules: list[OrderClassRule] = Field(default_factory=list, max_length=50)
    rate_limit_per_min: int | None = Field(default=None, ge=1, le=1_000_000)
    pull: PullConfig | None = None


def classify(
    rules: list[OrderClassRule],
    *,
    shipping_methods: list[str],
    delivery_requirements: list[str],
    tags: list[str],
    current: Priority,
) -> Priority:
    """The order's priority after the channel's rules: urgent wins over normal."""
    values = {
        "shipping_method": shipping_methods,
        "delivery_requirement": delivery_requirements,
        "tag": tags,
    }
    priority = current
    for rule in rules:
        needle = rule.contains.casefold()
        matches = any(needle in v.casefold() for v in values[rule.attribute])
        if matches and rule.priority == "urgent":
            priority = "urgent"
    return priority
