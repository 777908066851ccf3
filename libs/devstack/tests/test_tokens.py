"""``python -m oms_devstack token``: the demo token verifies with the public key the
``make run AUTH=jwt`` services are given, carries the roles asked for, and the key stays
the same across runs (tokens minted earlier keep working)."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest

from oms_devstack.cli import main
from oms_devstack.errors import DevstackError
from oms_devstack.tokens import (
    DEMO_AUDIENCE,
    DEMO_ISSUER,
    jwt_service_env,
    key_path,
    mint,
    parse_roles,
    public_key_pem,
    service_token_env,
)
from oms_servicekit.auth import Authenticator, AuthSettings


async def test_the_token_command_prints_a_token_the_services_accept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--root", str(tmp_path), "token", "--sub", "alice", "--roles",
                 "orders:write,orders:read"])  # fmt: skip
    assert code == 0
    token = capsys.readouterr().out.strip()

    claims = jwt.decode(
        token, public_key_pem(tmp_path), algorithms=["RS256"], audience=DEMO_AUDIENCE,
        issuer=DEMO_ISSUER,
    )  # fmt: skip
    assert claims["sub"] == "alice"
    assert claims["roles"] == ["orders:write", "orders:read"]
    assert claims["exp"] > claims["iat"]

    # The very settings `make run AUTH=jwt` gives the services.
    env = jwt_service_env(tmp_path)
    settings = AuthSettings(
        auth_mode="jwt",
        jwt_issuer=env["JWT_ISSUER"],
        jwt_audience=env["JWT_AUDIENCE"],
        jwt_public_key=env["JWT_PUBLIC_KEY"],
    )
    principal = await Authenticator(settings).authenticate({"authorization": f"Bearer {token}"})
    assert principal.subject == "alice"
    assert principal.roles == frozenset({"orders:write", "orders:read"})


def test_the_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = mint(tmp_path, "bob", ["alerts:ack"])
    path = key_path(tmp_path)
    assert path.is_file() and path.is_relative_to(tmp_path / ".oms")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A later run (same .oms/) verifies the earlier token: the key did not change.
    jwt.decode(first, public_key_pem(tmp_path), algorithms=["RS256"], audience=DEMO_AUDIENCE)
    other = tmp_path / "elsewhere"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(first, public_key_pem(other), algorithms=["RS256"], audience=DEMO_AUDIENCE)


def test_unknown_roles_an_empty_subject_and_expired_tokens(tmp_path: Path) -> None:
    assert parse_roles("orders:read, alerts:ack") == ("orders:read", "alerts:ack")
    with pytest.raises(DevstackError, match="orders:admin"):
        parse_roles("orders:admin")
    with pytest.raises(DevstackError):
        mint(tmp_path, " ", ["orders:read"])
    old = mint(tmp_path, "carol", ["orders:read"], ttl_s=60, now=1_000_000)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(old, public_key_pem(tmp_path), algorithms=["RS256"], audience=DEMO_AUDIENCE)


def test_the_token_command_refuses_an_unknown_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(tmp_path), "token", "--sub", "x", "--roles", "root"]) == 1
    assert "unknown role" in capsys.readouterr().err


def test_make_run_auth_mode_comes_from_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from oms_devstack.cli import _auth_mode

    monkeypatch.delenv("OMS_AUTH", raising=False)
    monkeypatch.delenv("AUTH", raising=False)
    assert _auth_mode(None) == "dev"  # the `make run` default
    monkeypatch.setenv("AUTH", "jwt")  # `make run AUTH=jwt` exports it to the recipe
    assert _auth_mode(None) == "jwt"
    assert _auth_mode("dev") == "dev"
    monkeypatch.setenv("AUTH", "none")
    with pytest.raises(DevstackError, match="none"):
        _auth_mode(None)


async def test_make_run_auth_jwt_gives_the_notifier_its_own_read_only_token(
    tmp_path: Path,
) -> None:
    env = jwt_service_env(tmp_path)
    token = service_token_env(tmp_path)["notifier"]["SERVICE_TOKEN"]
    settings = AuthSettings(
        auth_mode="jwt",
        jwt_issuer=env["JWT_ISSUER"],
        jwt_audience=env["JWT_AUDIENCE"],
        jwt_public_key=env["JWT_PUBLIC_KEY"],
    )
    principal = await Authenticator(settings).authenticate({"authorization": f"Bearer {token}"})
    assert principal.subject == "service:notifier"
    assert principal.roles == frozenset({"orders:read"})
