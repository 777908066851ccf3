"""Who is calling, and may they: bearer JWTs in production, an operator header in dev.

``AUTH_MODE=jwt`` (the deploy/ default): every protected request carries
``Authorization: Bearer <JWT>`` signed by the configured issuer, verified with a pinned
algorithm list against a JWKS URL or a static public key, with ``exp``, ``iss`` and ``aud``
required and checked (PyJWT refuses ``alg=none`` and any algorithm not pinned). Roles come
from a claim (``roles`` by default, a list or a space-separated string); a partner's
channel from another (``channel``).

``AUTH_MODE=dev`` (the ``make run`` default): the ``X-Operator`` header is the identity and
it holds every role. Start-up says so loudly; never run it where strangers can reach.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Header, Request
from pydantic_settings import BaseSettings, SettingsConfigDict

from oms_servicekit.problems import Problem

log = logging.getLogger(__name__)

#: Every role an operator or a partner can hold (issue: security).
ROLES = frozenset(
    {
        "orders:read",
        "orders:write",
        "inventory:adjust",
        "customers:pii",
        "channels:admin",
        "alerts:ack",
    }
)
OPERATOR_HEADER = "X-Operator"


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    auth_mode: Literal["dev", "jwt"] = "dev"
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_jwks_url: str = ""
    #: A PEM public key, used when no JWKS URL is set.
    jwt_public_key: str = ""
    #: Pinned; JSON in the environment, e.g. JWT_ALGORITHMS='["RS256","ES256"]'.
    jwt_algorithms: list[str] = ["RS256"]
    jwt_roles_claim: str = "roles"
    jwt_channel_claim: str = "channel"
    jwt_leeway_s: int = 30


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an operator, a service, or a partner channel."""

    subject: str
    roles: frozenset[str]
    #: Set for a partner's token: the only channel whose orders it may see.
    channel: str | None = None

    def has(self, role: str) -> bool:
        return role in self.roles


class ConfigurationError(ValueError):
    """The auth settings cannot verify anything (e.g. jwt mode without a key)."""


class Authenticator:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        if settings.auth_mode == "jwt":
            if not settings.jwt_issuer or not settings.jwt_audience:
                raise ConfigurationError("AUTH_MODE=jwt needs JWT_ISSUER and JWT_AUDIENCE")
            if not settings.jwt_jwks_url and not settings.jwt_public_key:
                raise ConfigurationError("AUTH_MODE=jwt needs JWT_JWKS_URL or JWT_PUBLIC_KEY")
            if not settings.jwt_algorithms or any(
                a.lower() == "none" or a.startswith("HS") for a in settings.jwt_algorithms
            ):
                raise ConfigurationError("JWT_ALGORITHMS must name asymmetric algorithms only")
            if settings.jwt_jwks_url:
                self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True)

    @property
    def mode(self) -> str:
        return self.settings.auth_mode

    def announce(self, service: str) -> None:
        if self.mode == "dev":
            log.warning(
                "AUTH_MODE=dev: %s trusts the X-Operator header as the caller's identity and "
                "grants it every role. Local development only: set AUTH_MODE=jwt elsewhere.",
                service,
            )

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller, or Problem 401 (no or bad credentials)."""
        if self.mode == "dev":
            return Principal(dev_operator(headers.get(OPERATOR_HEADER)), ROLES)
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(401, "a bearer token is required", field="Authorization")
        claims = await self._verify(token.strip())
        subject = str(claims.get("sub") or "")
        if not subject:
            raise Problem(401, "the token names no subject", field="Authorization")
        return Principal(subject, _roles(claims.get(self.settings.jwt_roles_claim)),
                         _channel(claims.get(self.settings.jwt_channel_claim)))  # fmt: skip

    async def _verify(self, token: str) -> dict[str, Any]:
        s = self.settings
        try:
            if self._jwks is not None:
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                key: Any = signing_key.key
            else:
                key = s.jwt_public_key
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=s.jwt_algorithms,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                leeway=s.jwt_leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Problem(401, "the token has expired", field="Authorization") from None
        except (jwt.PyJWTError, ValueError) as exc:
            # The reason (bad signature, audience, issuer, algorithm) is logged, not echoed.
            log.info("token refused: %s", type(exc).__name__)
            raise Problem(401, "the token is not valid here", field="Authorization") from None
        return claims


def dev_operator(value: str | None) -> str:
    if value is None or not value.strip():
        raise Problem(401, "operator identity required (X-Operator header)", field="X-Operator")
    operator = value.strip()
    if len(operator) > 128 or any(ord(c) < 32 or ord(c) == 127 for c in operator):
        raise Problem(400, "invalid operator identity", field="X-Operator")
    return operator


def _roles(raw: object) -> frozenset[str]:
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(str(r) for r in raw)
    return frozenset()


def _channel(raw: object) -> str | None:
    return raw if isinstance(raw, str) and raw else None


def authenticator_of(request: Request) -> Authenticator:
    auth = getattr(request.app.state, "authenticator", None)
    if auth is None:  # an app built without one (some tests): dev semantics
        auth = Authenticator(AuthSettings(auth_mode="dev"))
        request.app.state.authenticator = auth
    return auth  # type: ignore[no-any-return]


async def current_principal(request: Request) -> Principal:
    return await authenticator_of(request).authenticate(request.headers)


@functools.cache
def require_role(role: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, who must hold ``role`` (else 403, nothing done)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        if not principal.has(role):
            raise Problem(403, f"this action needs the role {role}")
        return principal

    return dependency


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def operator_with_role(role: str) -> Callable[..., Awaitable[str]]:
    """A dependency: the subject of a caller holding ``role`` (401 unauthenticated, 403
    without the role), for operator actions that record who did them in their audit."""
    check = require_role(role)

    async def dependency(
        request: Request,
        x_operator: Annotated[
            str | None, Header(description="Who performs this action (AUTH_MODE=dev)")
        ] = None,
    ) -> str:
        # x_operator is declared so OpenAPI documents the dev-mode header; the
        # authenticator reads it (or the bearer token) from the request itself.
        return (await check(request)).subject

    return dependency


@functools.cache
def role_in_jwt_mode(role: str) -> Callable[[Request], Awaitable[Principal | None]]:
    """A dependency for routes that were open before roles existed (placing an order,
    catalogue set-up, reads): ``AUTH_MODE=jwt`` demands a token holding ``role`` (401/403);
    dev mode admits the caller as before, with or without an ``X-Operator`` header, so
    the ``make run`` front ends and scripts keep working unchanged."""
    check = require_role(role)

    async def dependency(request: Request) -> Principal | None:
        if authenticator_of(request).mode == "dev":
            return None
        return await check(request)

    return dependency


#: Who the audit trail names when a dev-mode caller of an open route sends no X-Operator.
ANONYMOUS = "anonymous"


@functools.cache
def actor_in_jwt_mode(role: str) -> Callable[..., Awaitable[str]]:
    """A dependency for routes open in dev mode that still record who acted (their audit
    rows): in jwt mode the subject of a token holding ``role`` (401/403 otherwise); in
    dev mode the ``X-Operator`` header when sent (400 if malformed), else ``anonymous``.

    These factories are cached per role: a route naming the same check twice (route-level
    and through this dependency) gets one callable, which FastAPI runs once per request."""
    check = role_in_jwt_mode(role)

    async def dependency(
        request: Request,
        x_operator: Annotated[
            str | None, Header(description="Who performs this action (AUTH_MODE=dev)")
        ] = None,
    ) -> str:
        principal = await check(request)
        if principal is not None:
            return principal.subject
        if x_operator is None or not x_operator.strip():
            return ANONYMOUS
        return dev_operator(x_operator)

    return dependency


PII_ROLE = "customers:pii"


@functools.cache
def sees_personal_data(read_role: str) -> Callable[[Request], Awaitable[bool]]:
    """A dependency for reads that carry customers' personal data: enforces ``read_role``
    in jwt mode (401/403) and says whether the caller sees that data unmasked, i.e. also
    holds ``customers:pii``. Dev mode holds every role: True."""
    check = role_in_jwt_mode(read_role)

    async def dependency(request: Request) -> bool:
        principal = await check(request)
        return principal is None or principal.has(PII_ROLE)

    return dependency
