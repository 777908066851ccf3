"""Value objects that several events carry."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Priority = Literal["normal", "urgent"]
PaymentTerms = Literal["prepaid", "on_account", "cash_on_delivery"]


class CustomerIdentity(BaseModel):
    """Who ordered, as the channel knows them."""

    model_config = ConfigDict(frozen=True)

    platform_user_id: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None


class Address(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str | None = None
    phone: str | None = None
    region: str
    city: str | None = None
    line1: str | None = None
    postal_code: str | None = None


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_no: int = Field(ge=1)
    sku: str
    qty: int = Field(ge=1)
    unit_price: Decimal
    #: The warehouse chosen for this line (by routing), if any.
    warehouse: str | None = None
