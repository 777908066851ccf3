"""Authentication and roles at the HTTP edge: a real app, real RS256 tokens.

In jwt mode a valid token passes; an expired one, one for another audience or issuer, one
signed by another key and an unsigned (``alg=none``) one are 401; a missing role is 403 and
the endpoint never runs. In dev mode the X-Operator header is the identity, with every role.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Depends, FastAPI

from oms_servicekit.auth import (
    Authenticator,
    AuthSettings,
    ConfigurationError,
    Principal,
    require_role,
)
from oms_servicekit.http import OperatorDep
from oms_servicekit.problems import PROBLEM_JSON, install_problem_handlers

ISSUER = "https://id.example.com/"
AUDIENCE = "oms"


def keypair() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public.decode()


KEY, PUBLIC = keypair()
OTHER_KEY, _ = keypair()


def token(key: Any = KEY, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "sub": "ops@example.com",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": int(time.time()) + 300,
        "roles": ["inventory:adjust", "orders:read"],
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256")


def build_app(settings: AuthSettings, calls: list[str]) -> FastAPI:
    router = APIRouter()

    @router.post("/adjust")
    async def adjust(
        principal: Annotated[Principal, Depends(require_role("inventory:adjust"))],
    ) -> dict[str, str]:
        calls.append(principal.subject)
        return {"by": principal.subject}

    @router.post("/refund")
    async def refund(
        principal: Annotated[Principal, Depends(require_role("orders:write"))],
    ) -> dict[str, str]:
        calls.append(principal.subject)
        return {"by": principal.subject}

    @router.post("/operator-action")
    async def operator_action(operator: OperatorDep) -> dict[str, str]:
        calls.append(operator)
        return {"by": operator}

    app = FastAPI()
    app.state.authenticator = Authenticator(settings)
    install_problem_handlers(app)
    app.include_router(router)
    return app


@pytest.fixture
async def jwt_client() -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    calls: list[str] = []
    settings = AuthSettings(
        auth_mode="jwt", jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_public_key=PUBLIC
    )
    transport = httpx.ASGITransport(app=build_app(settings, calls))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        yield client, calls


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_a_valid_token_with_the_role_passes(
    jwt_client: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, calls = jwt_client
    r = await client.post("/adjust", headers=bearer(token()))
    assert r.status_code == 200, r.text
    assert r.json() == {"by": "ops@example.com"}
    r = await client.post("/operator-action", headers=bearer(token()))
    assert r.json() == {"by": "ops@example.com"}
    assert calls == ["ops@example.com", "ops@example.com"]


def hmac_signed_with_the_public_key(**claims: Any) -> str:
    """The algorithm-confusion attack: HS256 keyed with the (public) verification key."""
    header = {"alg": "HS256", "typ": "JWT"}
    body = {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, **claims}

    def part(data: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    signing_input = part(header) + b"." + part(body)
    mac = hmac.new(PUBLIC.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


def unsigned(**claims: Any) -> str:
    return jwt.encode(
        {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, **claims},
        None,
        algorithm="none",
    )


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param(token(exp=int(time.time()) - 3600), id="expired"),
        pytest.param(token(aud="another-api"), id="wrong-audience"),
        pytest.param(token(iss="https://evil.example.com/"), id="wrong-issuer"),
        pytest.param(token(key=OTHER_KEY), id="foreign-key"),
        pytest.param(token(exp=None), id="no-expiry"),
        pytest.param(unsigned(roles=["inventory:adjust"]), id="alg-none"),
        pytest.param(
            hmac_signed_with_the_public_key(roles=["inventory:adjust"]), id="alg-confusion"
        ),
        pytest.param("not-a-jwt", id="garbage"),
    ],
)
async def test_bad_tokens_are_401_and_nothing_runs(
    jwt_client: tuple[httpx.AsyncClient, list[str]], credentials: str
) -> None:
    client, calls = jwt_client
    r = await client.post("/adjust", headers=bearer(credentials))
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert calls == []


async def test_no_token_or_only_the_dev_header_is_401_in_jwt_mode(
    jwt_client: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, calls = jwt_client
    assert (await client.post("/adjust")).status_code == 401
    r = await client.post("/operator-action", headers={"X-Operator": "mallory"})
    assert r.status_code == 401
    assert calls == []


async def test_a_missing_role_is_403_and_nothing_runs(
    jwt_client: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, calls = jwt_client
    r = await client.post("/refund", headers=bearer(token()))
    assert r.status_code == 403, r.text
    assert "orders:write" in r.json()["detail"]
    r = await client.post("/adjust", headers=bearer(token(roles="orders:read")))
    assert r.status_code == 403
    assert calls == []


async def test_dev_mode_takes_the_operator_header_with_every_role() -> None:
    calls: list[str] = []
    transport = httpx.ASGITransport(app=build_app(AuthSettings(auth_mode="dev"), calls))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        r = await client.post("/refund", headers={"X-Operator": "dev@example.com"})
        assert r.status_code == 200, r.text
        assert (await client.post("/refund")).status_code == 401
        r = await client.post("/refund", headers={"X-Operator": "a\x7fb"})
        assert r.status_code == 400
    assert calls == ["dev@example.com"]


@pytest.mark.parametrize(
    "settings",
    [
        AuthSettings(auth_mode="jwt", jwt_audience=AUDIENCE, jwt_public_key=PUBLIC),
        AuthSettings(auth_mode="jwt", jwt_issuer=ISSUER, jwt_audience=AUDIENCE),
        AuthSettings(
            auth_mode="jwt",
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            jwt_public_key=PUBLIC,
            jwt_algorithms=["HS256"],
        ),
        AuthSettings(
            auth_mode="jwt",
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            jwt_public_key=PUBLIC,
            jwt_algorithms=["none"],
        ),
    ],
)
def test_jwt_mode_without_issuer_key_or_with_weak_algorithms_does_not_start(
    settings: AuthSettings,
) -> None:
    with pytest.raises(ConfigurationError):
        Authenticator(settings)
