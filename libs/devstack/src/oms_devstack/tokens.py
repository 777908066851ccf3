"""Demo JWTs for the local stack: a signing key under ``.oms/``, tokens minted with it, and
the settings that make the services trust it (``make run AUTH=jwt``).

The key is generated on first use and never leaves the developer's machine; the issuer
and audience are fixed demo values, so a demo token is worthless against a deployment
(which trusts its own identity provider's issuer, audience and keys).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from oms_devstack.config import oms_dir
from oms_devstack.errors import DevstackError

DEMO_ISSUER = "https://oms.localhost/devstack"
DEMO_AUDIENCE = "oms-demo"
ALGORITHM = "RS256"
#: Every role the services know (oms_servicekit.auth.ROLES), for the demo's all-roles token.
ALL_ROLES = (
    "orders:read",
    "orders:write",
    "inventory:adjust",
    "customers:pii",
    "channels:admin",
    "alerts:ack",
)
#: What the demo seed needs: catalogue, stock, channels and the customers' tag rules.
SEED_ROLES = ("inventory:adjust", "channels:admin", "customers:pii")
DEFAULT_TTL_S = 8 * 3600
#: Each calling service's own token and the roles it needs for its calls to peers
#: (the notifier's board reads orders and customer cards; masked, so no customers:pii).
SERVICE_ROLES: dict[str, tuple[str, ...]] = {"notifier": ("orders:read",)}
#: A demo stack runs for a working day or a week-end; deployments rotate real ones.
SERVICE_TOKEN_TTL_S = 7 * 24 * 3600


def key_path(root: Path) -> Path:
    """Where the demo signing key lives (git-ignored with the rest of ``.oms/``)."""
    return oms_dir(root) / "jwt" / "demo-signing-key.pem"


def signing_key(root: Path) -> rsa.RSAPrivateKey:
    """The demo private key, generated (owner-only permissions) on first use."""
    path = key_path(root)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        # Two first uses at once: the first rename wins and both then read the same key.
        if not path.exists():
            tmp.replace(path)
        else:
            tmp.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise DevstackError(f"{path} is not an RSA private key; delete it to get a new one")
    return loaded


def public_key_pem(root: Path) -> str:
    """The PEM public key the services verify demo tokens with (``JWT_PUBLIC_KEY``)."""
    public = signing_key(root).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def parse_roles(raw: str) -> tuple[str, ...]:
    """``a,b c`` -> the roles, each one the services know (else a DevstackError)."""
    roles = tuple(r for r in raw.replace(",", " ").split() if r)
    unknown = sorted(set(roles) - set(ALL_ROLES))
    if unknown:
        raise DevstackError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(ALL_ROLES)}")
    return roles


def mint(
    root: Path,
    subject: str,
    roles: Iterable[str],
    *,
    ttl_s: int = DEFAULT_TTL_S,
    now: float | None = None,
    channel: str | None = None,
) -> str:
    """A demo token for ``subject`` holding ``roles``, valid ``ttl_s`` seconds; with
    ``channel``, a partner's token limited to that channel's orders."""
    if not subject.strip():
        raise DevstackError("a token needs a subject (--sub)")
    if ttl_s <= 0:
        raise DevstackError("a token's validity (--ttl) must be positive seconds")
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": subject.strip(),
        "iss": DEMO_ISSUER,
        "aud": DEMO_AUDIENCE,
        "iat": issued,
        "exp": issued + ttl_s,
        "roles": list(roles),
    }
    if channel:
        claims["channel"] = channel
    return jwt.encode(claims, signing_key(root), algorithm=ALGORITHM)


def jwt_service_env(root: Path) -> dict[str, str]:
    """The services' settings for ``make run AUTH=jwt``: trust the demo key only."""
    return {
        "AUTH_MODE": "jwt",
        "JWT_ISSUER": DEMO_ISSUER,
        "JWT_AUDIENCE": DEMO_AUDIENCE,
        "JWT_PUBLIC_KEY": public_key_pem(root),
        "JWT_JWKS_URL": "",
        "JWT_ALGORITHMS": f'["{ALGORITHM}"]',
        # A local demo: keep /docs for the developer (deployments leave API_DOCS unset).
        "API_DOCS": "true",
    }


def service_token_env(root: Path, ttl_s: int = SERVICE_TOKEN_TTL_S) -> dict[str, dict[str, str]]:
    """Per calling service, ``SERVICE_TOKEN``: its own demo token (subject
    ``service:<name>``) with just the roles of :data:`SERVICE_ROLES`."""
    return {
        name: {"SERVICE_TOKEN": mint(root, f"service:{name}", roles, ttl_s=ttl_s)}
        for name, roles in SERVICE_ROLES.items()
    }
