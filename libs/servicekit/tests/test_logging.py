"""Logs are one JSON object per line: a CR or LF inside a logged value (a header, a
channel order id, an exception message) cannot start a forged log line."""

from __future__ import annotations

import io
import json
import logging

from oms_servicekit.logging import JsonFormatter, mask

FORGED = 'ok\r\n{"level": "info", "msg": "payment approved", "service": "order-svc"}'


def logged_lines(emit: object) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test-svc"))
    logger = logging.getLogger("oms.test.forging")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    assert callable(emit)
    emit(logger)
    return stream.getvalue().splitlines()


def test_crlf_in_the_message_arguments_and_extras_stays_inside_one_line() -> None:
    def emit(logger: logging.Logger) -> None:
        logger.warning("refused order %s", FORGED, extra={"channel_order_id": FORGED})

    lines = logged_lines(emit)
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["msg"] == f"refused order {FORGED}"
    assert entry["channel_order_id"] == FORGED


def test_an_exception_with_crlf_in_its_message_is_one_line_too() -> None:
    def emit(logger: logging.Logger) -> None:
        try:
            raise ValueError(FORGED)
        except ValueError:
            logger.exception("handler failed")

    lines = logged_lines(emit)
    assert len(lines) == 1
    assert FORGED in json.loads(lines[0])["exc"]


def test_mask_keeps_only_the_last_two_characters() -> None:
    assert mask("+8613800138000") == "************00"
    assert mask("a") == "a"
    assert mask(None) is None
