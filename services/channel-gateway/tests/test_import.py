"""Bulk import of orders from CSV and XLSX: every row answered, the file streamed."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from openpyxl import Workbook
from sqlalchemy import text

from channel_gateway.imports import COLUMNS, XLSX_TYPE
from oms_servicekit.testing import MigratedDatabase

OPERATOR = {"X-Operator": "ops-anna"}


def row(i: int, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "channel_order_id": f"IMP-{i:05d}",
        "customer_id": f"cust-{i % 97}",
        "customer_name": "Wang Fang",
        "phone": "+8613800000002",
        "email": "wang.fang@example.com",
        "sku": "CH-SKU-1",
        "qty": 1 + i % 3,
        "unit_price": "12.50",
        "currency": "CNY",
        "paid": "true",
        "paid_at": "2026-01-02T03:04:05+00:00",
        "region": "CN-BJ",
        "city": "Beijing",
        "address": "8 Import Street",
        "postal_code": "100000",
        "notes": "",
        "priority": "normal",
        "delivery_requirements": "",
    }
    return values | overrides


def rows_5000() -> list[dict[str, Any]]:
    rows = [row(i) for i in range(1, 5001)]
    rows[10] = row(11, qty="zero")  # rejected: qty
    rows[20] = row(21, currency="yuan")  # rejected: currency
    rows[30] = row(3)  # duplicate of row 3 in the same file
    return rows


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def as_xlsx(rows: list[dict[str, Any]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(list(COLUMNS))
    for values in rows:
        sheet.append([values[c] for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def setup_channel(client: httpx.AsyncClient) -> None:
    r = await client.post("/channels", json={"name": "bulk", "secret": "bulk-secret-1"})
    assert r.status_code == 201
    await client.put("/channels/bulk/sku-map", json={"mapping": {"CH-SKU-1": "SKU-1"}})


def check(result: dict[str, Any], total: int) -> None:
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (total - 3, 1, 2)
    by_row = {r["row"]: r for r in result["rows"]}
    assert len(by_row) == total
    assert by_row[12] == {
        "row": 12,
        "status": "rejected",
        "order_ref": None,
        "column": "qty",
        "reason": by_row[12]["reason"],
    }
    assert by_row[22]["column"] == "currency"
    assert by_row[32]["status"] == "duplicate"
    assert by_row[32]["order_ref"] == by_row[4]["order_ref"]
    assert by_row[2]["status"] == "accepted" and by_row[2]["order_ref"]


async def test_a_5000_row_csv_is_answered_row_by_row(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await setup_channel(client)
    r = await client.post(
        "/imports/orders",
        params={"channel": "bulk"},
        content=as_csv(rows_5000()),
        headers={"Content-Type": "text/csv; charset=utf-8", **OPERATOR},
    )
    assert r.status_code == 200, r.text[:500]
    check(r.json(), 5000)
    outbox = await gdb.outbox_rows()
    assert len(outbox) == 4997
    first = outbox[0]["envelope"].payload
    assert first["lines"][0]["sku"] == "SKU-1" and first["paid"] is True

    again = await client.post(
        "/imports/orders",
        params={"channel": "bulk"},
        content=as_csv(rows_5000()[:10]),
        headers={"Content-Type": "text/csv", **OPERATOR},
    )
    assert again.json()["duplicate"] == 10
    assert len(await gdb.outbox_rows()) == 4997


async def test_an_xlsx_is_streamed_and_answered_row_by_row(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await setup_channel(client)
    r = await client.post(
        "/imports/orders",
        params={"channel": "bulk"},
        content=as_xlsx(rows_5000()[:1000]),
        headers={"Content-Type": XLSX_TYPE, **OPERATOR},
    )
    assert r.status_code == 200, r.text[:500]
    check(r.json(), 1000)


async def test_imports_need_an_operator_a_known_channel_and_a_spreadsheet(
    client: httpx.AsyncClient, gdb: MigratedDatabase
) -> None:
    await setup_channel(client)
    csv_headers = {"Content-Type": "text/csv"}
    valid = as_csv(rows_5000()[:3])  # a file that would import, were the request allowed
    no_operator = await client.post(
        "/imports/orders", params={"channel": "bulk"}, content=valid, headers=csv_headers
    )
    assert no_operator.status_code == 401
    unknown = await client.post(
        "/imports/orders",
        params={"channel": "nope"},
        content=valid,
        headers={**csv_headers, **OPERATOR},
    )
    assert unknown.status_code == 404
    wrong = await client.post(
        "/imports/orders",
        params={"channel": "bulk"},
        content=valid,
        headers={"Content-Type": "application/json", **OPERATOR},
    )
    assert wrong.status_code == 415
    # Refused means nothing ingested: no channel order, no event.
    rows = await gdb.outbox_rows()
    assert [r for r in rows if r["event_type"] == "OrderReceived"] == []
    async with gdb.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM channel_orders")) == 0
