"""Bulk order import from CSV or XLSX, row by row, never holding the whole file.

One row is one single-line order. The columns (header row, any order, extra columns
ignored): ``channel_order_id, customer_id, customer_name, phone, email, sku, qty,
unit_price, currency, paid, paid_at, region, city, address, postal_code, notes,
priority, delivery_requirements``. A row is answered accepted (with the order ref),
duplicate (the channel order exists) or rejected (naming the column and the reason).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import IO, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from channel_gateway.domain.canonical import CanonicalOrder
from channel_gateway.domain.platforms import PlatformOrder

CSV_TYPES = ("text/csv", "application/csv")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
COLUMNS = (
    "channel_order_id",
    "customer_id",
    "customer_name",
    "phone",
    "email",
    "sku",
    "qty",
    "unit_price",
    "currency",
    "paid",
    "paid_at",
    "region",
    "city",
    "address",
    "postal_code",
    "notes",
    "priority",
    "delivery_requirements",
)


class ImportRowIn(BaseModel):
    """One row, validated column by column so a rejection names its column."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    channel_order_id: str = Field(min_length=1, max_length=128)
    customer_id: str = Field(min_length=1, max_length=128)
    customer_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()\-]{3,32}$")
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=1, le=10_000)
    unit_price: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    paid: bool = False
    paid_at: AwareDatetime | None = None
    region: str = Field(min_length=1, max_length=64)
    city: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=300)
    postal_code: str | None = Field(default=None, max_length=20)
    notes: str | None = Field(default=None, max_length=2000)
    priority: Literal["normal", "urgent"] = "normal"
    delivery_requirements: str | None = Field(default=None, max_length=500)

    def to_platform(self) -> PlatformOrder:
        order = CanonicalOrder.model_validate(
            {
                "channel_order_id": self.channel_order_id,
                "customer": {
                    "platform_user_id": self.customer_id,
                    "name": self.customer_name,
                    "phone": self.phone,
                    "email": self.email,
                },
                "lines": [{"sku": self.sku, "qty": self.qty, "unit_price": self.unit_price}],
                "currency": self.currency,
                "paid": self.paid,
                "paid_at": self.paid_at,
                "shipping_address": {
                    "name": self.customer_name,
                    "phone": self.phone,
                    "region": self.region,
                    "city": self.city,
                    "line1": self.address,
                    "postal_code": self.postal_code,
                },
                "delivery_requirements": [
                    r.strip() for r in (self.delivery_requirements or "").split(",") if r.strip()
                ],
                "notes": self.notes,
                "priority": self.priority,
            }
        )
        return PlatformOrder(order)


RowResult = tuple[int, "ImportRowIn | None", str | None, str | None]


def parse_row(number: int, values: dict[str, Any]) -> RowResult:
    """(row number, the row, or None with the column at fault and the reason)."""
    cleaned = {k: _cell(v) for k, v in values.items() if k}
    cleaned = {k: v for k, v in cleaned.items() if v is not None}
    try:
        row = ImportRowIn.model_validate(cleaned)
        row.to_platform()
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        loc = [str(p) for p in error.get("loc", ())]
        column = loc[0] if loc and loc[0] in COLUMNS else ".".join(loc) or None
        return number, None, column, error.get("msg", "invalid")
    return number, row, None, None


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def csv_rows(file: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a UTF-8 (optionally BOM-prefixed) CSV file, read line by line."""
    text = codecs.getreader("utf-8-sig")(file)
    reader = csv.DictReader(text)  # type: ignore[arg-type]
    for number, row in enumerate(reader, start=2):
        yield number, dict(row)


def xlsx_rows(file: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of the first sheet; openpyxl's read-only mode streams them from the zip."""
    from openpyxl import load_workbook

    workbook = load_workbook(file, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
        for number, values in enumerate(rows, start=2):
            if all(v is None for v in values):
                continue
            yield number, dict(zip(header, values, strict=False))
    finally:
        workbook.close()
