"""A service's own credentials for calls to its peers: its token (static or from a file
that is read again when it changes), or its name in X-Operator in dev mode only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oms_servicekit.service_auth import ServiceCredentials, ServiceCredentialSettings


def test_dev_mode_without_a_token_names_the_service() -> None:
    creds = ServiceCredentials("notifier", ServiceCredentialSettings(auth_mode="dev"))
    assert creds.headers() == {"X-Operator": "service:notifier"}


def test_jwt_mode_sends_the_static_token_and_nothing_without_one() -> None:
    with_token = ServiceCredentialSettings(auth_mode="jwt", service_token=" abc.def.ghi\n")
    assert ServiceCredentials("n", with_token).headers() == {"Authorization": "Bearer abc.def.ghi"}
    assert ServiceCredentials("n", ServiceCredentialSettings(auth_mode="jwt")).headers() == {}


def test_a_rotated_token_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token\n")
    settings = ServiceCredentialSettings(auth_mode="jwt", service_token_file=str(path))
    creds = ServiceCredentials("notifier", settings)
    assert creds.headers() == {"Authorization": "Bearer first-token"}
    path.write_text("second-token-rotated\n")
    os.utime(path, ns=(1, 10**18))  # a new mtime even on coarse-grained file systems
    assert creds.headers() == {"Authorization": "Bearer second-token-rotated"}


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_TOKEN", "from-env")
    monkeypatch.setenv("AUTH_MODE", "jwt")
    assert ServiceCredentials("n").headers() == {"Authorization": "Bearer from-env"}
