"""Free ports, and the webhook signature against the shell recipe the banner prints."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from oms_devstack import free_ports, port_is_free, signature
from oms_devstack.signing import demo_order, shell_signature_command, shell_webhook_example


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8
    assert all(port_is_free(port) for port in ports)


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_is_free(sock.getsockname()[1])


def test_signature_format_and_value() -> None:
    body = b'{"a": 1}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", body, 1700000000) == f"t=1700000000,v1={expected}"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_shell_recipe_matches_python() -> None:
    body = demo_order()
    script = f"BODY={body!r}\nTS=1700000000\nSIG=$({shell_signature_command('demo-secret')})\n"
    script += 'printf "%s" "$SIG"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert f"t=1700000000,v1={out}" == signature("demo-secret", body.encode(), 1700000000)


def test_webhook_example_posts_the_body_it_signs() -> None:
    example = shell_webhook_example("http://127.0.0.1:8004/webhooks/web", "demo-secret", "{}")
    assert "BODY='{}'" in example
    assert "X-OMS-Signature: t=$TS,v1=$SIG" in example
    assert '-d "$BODY"' in example


def test_cli_sign_prints_the_header(tmp_path: Path) -> None:
    body = tmp_path / "order.json"
    body.write_bytes(demo_order().encode())
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "oms_devstack",
            "sign",
            "--channel",
            "web",
            "--secret",
            "demo-secret",
            "--body",
            str(body),
            "--timestamp",
            "1700000000",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    ).stdout.strip()
    assert out == "X-OMS-Signature: " + signature("demo-secret", body.read_bytes(), 1700000000)
