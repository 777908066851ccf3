"""A fake credit bureau: a real HTTP server whose behaviour a test sets over HTTP.

``POST /credit/check`` answers according to the current mode:

- ``ok`` / ``refuse``: 200 ``{"decision": "approved" | "refused", "reason": ...}`` after
  ``delay_s``;
- ``hang``: never answers (until the server stops);
- ``fail``: 500;
- ``async``: 202 ``{"check_id": ...}``, then after ``callback_delay_s`` it POSTs
  ``{"order_id", "decision", "reason", "check_id"}`` to the request's ``callback_url``,
  signed ``X-Credit-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``.

Control: ``GET /control`` (mode and counters), ``POST /control`` (any of ``mode``,
``delay_s``, ``callback_delay_s``, ``callback_decision``, ``reason``, ``secret``),
``POST /control/reset``. ``/healthz`` and ``/readyz`` answer 200.

Standard library only (a threaded ``http.server``), so it runs in-process in a test
(:class:`FakeCreditBureau`) or as its own process: ``python -m
oms_devstack.fakes.credit_bureau`` (``HOST``, ``PORT``, ``CREDIT_CALLBACK_SECRET``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("ok", "refuse", "hang", "fail", "async")
SIGNATURE_HEADER = "X-Credit-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class BureauState:
    def __init__(self, secret: str = "") -> None:
        self.lock = threading.Lock()
        self.released = threading.Event()  # set on stop: hanging requests give up
        self.secret = secret
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.mode = "ok"
            self.delay_s = 0.0
            self.callback_delay_s = 0.5
            self.callback_decision = "approved"
            self.reason = "credit limit exceeded"
            self.calls = 0
            self.callbacks_sent = 0
            self.callback_errors = 0
            self.orders: list[str] = []

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "mode": self.mode,
                "delay_s": self.delay_s,
                "callback_delay_s": self.callback_delay_s,
                "callback_decision": self.callback_decision,
                "reason": self.reason,
                "calls": self.calls,
                "callbacks_sent": self.callbacks_sent,
                "callback_errors": self.callback_errors,
                "orders": list(self.orders[-100:]),
            }

    def configure(self, changes: dict[str, Any]) -> None:
        with self.lock:
            if "mode" in changes:
                if changes["mode"] not in MODES:
                    raise ValueError(f"mode must be one of {MODES}")
                self.mode = changes["mode"]
            for name in ("delay_s", "callback_delay_s"):
                if name in changes:
                    setattr(self, name, float(changes[name]))
            for name in ("callback_decision", "reason", "secret"):
                if name in changes:
                    setattr(self, name, str(changes[name]))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the counters say what happened."""

    def _send(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def do_GET(self) -> None:
        state = self.server.state
        if self.path in ("/healthz", "/readyz"):
            self._send(200, {"status": "ok"})
        elif self.path == "/control":
            self._send(200, state.snapshot())
        else:
            self._send(404, {"detail": "not found"})

    def do_POST(self) -> None:
        state = self.server.state
        body = self._body()
        if self.path == "/control":
            try:
                state.configure(body)
            except (ValueError, TypeError) as exc:
                self._send(422, {"detail": str(exc)})
                return
            self._send(200, state.snapshot())
        elif self.path == "/control/reset":
            state.reset()
            self._send(200, state.snapshot())
        elif self.path == "/credit/check":
            self._check(state, body)
        else:
            self._send(404, {"detail": "not found"})

    def _check(self, state: BureauState, body: dict[str, Any]) -> None:
        with state.lock:
            state.calls += 1
            state.orders.append(str(body.get("order_id")))
            mode, delay = state.mode, state.delay_s
            decision, reason = state.callback_decision, state.reason
            callback_delay, secret = state.callback_delay_s, state.secret
        if mode == "hang":
            state.released.wait(3600)
            self.close_connection = True
            return
        if delay:
            time.sleep(delay)
        if mode == "fail":
            self._send(500, {"detail": "bureau failure (fake)"})
        elif mode == "ok":
            self._send(200, {"decision": "approved"})
        elif mode == "refuse":
            self._send(200, {"decision": "refused", "reason": reason})
        else:  # async
            check_id = uuid.uuid4().hex
            self._send(202, {"check_id": check_id})
            answer = {
                "order_id": body.get("order_id"),
                "decision": decision,
                "reason": reason if decision == "refused" else None,
                "check_id": check_id,
            }
            url = str(body.get("callback_url") or "")
            threading.Thread(
                target=_call_back,
                args=(state, url, answer, secret, callback_delay),
                daemon=True,
            ).start()


def _call_back(
    state: BureauState, url: str, answer: dict[str, Any], secret: str, delay: float
) -> None:
    if state.released.wait(delay):
        return
    raw = json.dumps(answer).encode()
    request = urllib.request.Request(
        url,
        data=raw,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, raw)},
    )
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            ok = 200 <= response.status < 300
    except Exception:
        ok = False
    with state.lock:
        if ok:
            state.callbacks_sent += 1
        else:
            state.callback_errors += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: BureauState


class FakeCreditBureau:
    """The fake bureau in a background thread (for tests in the same process)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, secret: str = "") -> None:
        self.state = BureauState(secret)
        self._server = _Server((host, port), _Handler)
        self._server.state = self.state
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def check_url(self) -> str:
        return self.url + "/credit/check"

    @property
    def calls(self) -> int:
        with self.state.lock:
            return self.state.calls

    def configure(self, **changes: Any) -> None:
        self.state.configure(changes)

    def start(self) -> FakeCreditBureau:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-credit-bureau", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.released.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeCreditBureau:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    bureau = FakeCreditBureau(
        os.environ.get("HOST", "127.0.0.1"),
        int(os.environ.get("PORT", "8006")),
        os.environ.get("CREDIT_CALLBACK_SECRET", ""),
    )
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    bureau.start()
    print(f"fake credit bureau on {bureau.url}", flush=True)
    stopped.wait()
    bureau.stop()


if __name__ == "__main__":
    main()
