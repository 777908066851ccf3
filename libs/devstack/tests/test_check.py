"""``python -m oms_devstack check`` (``make check``): prints each disagreement order-svc
reports and exits 1, or one "consistent" line and exits 0; it asks the order-svc of the
recorded stack, with a demo token when the stack may run in jwt mode."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from oms_devstack import check
from oms_devstack.cli import main
from oms_devstack.tokens import signing_key


def answer_with(
    monkeypatch: pytest.MonkeyPatch, status: int, body: dict[str, Any]
) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    monkeypatch.setattr(
        check,
        "http_client",
        lambda timeout: httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    return seen


def test_agreement_is_one_line_and_exit_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = answer_with(
        monkeypatch,
        200,
        {"orders_checked": 12, "reservations_checked": 9, "disagreements": []},
    )
    assert main(["--root", str(tmp_path), "check"]) == 0
    assert capsys.readouterr().out.strip() == "consistent: 12 orders, 9 reservations"
    [request] = seen
    assert str(request.url) == "http://127.0.0.1:8001/consistency"
    assert "Authorization" not in request.headers  # no demo key: a dev stack


def test_each_disagreement_is_printed_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    order_id = uuid.uuid4()
    seen = answer_with(
        monkeypatch,
        200,
        {
            "orders_checked": 3,
            "reservations_checked": 3,
            "disagreements": [
                {
                    "order_id": str(order_id),
                    "state": "cancelled",
                    "kind": "stock_held_for_closed_order",
                    "detail": "the order is cancelled but inventory still holds line 1: 1 x T",
                },
                {
                    "order_id": str(uuid.uuid4()),
                    "state": None,
                    "kind": "unknown_order",
                    "detail": "inventory holds line 1: 1 x T for an order order-svc ...",
                },
            ],
        },
    )
    signing_key(tmp_path)  # a jwt stack's demo key: the check sends a token

    assert main(["--root", str(tmp_path), "check", "--grace-s", "2"]) == 1

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 disagreement(s) between orders and stock reservations:"
    assert f"{order_id}  cancelled  stock_held_for_closed_order  the order is" in out[1]
    assert "  -  unknown_order  " in out[2]
    [request] = seen
    assert request.url.params["grace_s"] == "2.0"
    assert request.headers["Authorization"].startswith("Bearer ")


def test_an_error_answer_is_reported_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answer_with(monkeypatch, 503, {"detail": "inventory-svc could not be read"})
    assert main(["--root", str(tmp_path), "check"]) == 1
    assert "503: inventory-svc could not be read" in capsys.readouterr().err
