"""Where a service may send a request to a URL an operator configured (an SSRF guard).

Webhook targets, marketplace endpoints and any other URL typed in by an operator are
requests this system makes on someone's word, from inside the network. Every such URL
is checked twice, with one policy:

- when it is configured (:meth:`OutboundPolicy.check_url`, pure): the scheme (https,
  and http where the policy allows it), no credentials in the URL, the host against an
  optional allow-list, metadata host names, and a literal address against the blocked
  networks (link-local incl. 169.254.169.254, metadata, multicast, unspecified, and
  loopback unless allowed);
- before each request (:func:`check_resolved`): the same again, then every address
  the host resolves to *now*, so a name that later resolves to a metadata or loopback
  address (DNS rebinding) is refused before anything is sent.

Loopback stays allowed by default for development and tests, as everywhere in this
project; production sets ``OUTBOUND_ALLOWED_NETWORKS=[]``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The only schemes an outbound request may ever use (the policy may narrow them).
SUPPORTED_SCHEMES = frozenset({"https", "http"})

#: Addresses an outbound request must never reach (unless an allowed network says so).
DEFAULT_BLOCKED_NETWORKS: tuple[str, ...] = (
    "0.0.0.0/8",  # "this network", incl. the unspecified 0.0.0.0
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, incl. the 169.254.169.254 metadata service
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved
    "255.255.255.255/32",  # broadcast
    "::/128",  # unspecified
    "::1/128",  # loopback
    "fe80::/10",  # link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "ff00::/8",  # multicast
)
#: Exceptions to the blocked networks by default: loopback, for development and tests.
DEFAULT_ALLOWED_NETWORKS: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
#: Host names of metadata services, refused whatever they resolve to.
METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
#: NAT64's well-known prefix: its addresses reach the IPv4 address in their last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_MAX_URL = 2000


class OutboundRefused(ValueError):
    """A URL this service may not call; ``str()`` says why (fit for a 422 or a log)."""


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Networks from CIDR strings (a bare address is its own /32 or /128)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def host_address(host: str) -> IPAddress | None:
    """The address ``host`` names literally, else None (a name to resolve).

    ``localhost`` (and any ``*.localhost``) is loopback. Legacy IPv4 spellings that
    resolvers accept as addresses (``2130706433``, ``0x7f.1``, ``127.1``) count as the
    address they spell, so they cannot slip past as "names".
    """
    host = normalize_host(host)
    if host == "localhost" or host.endswith(".localhost") or host == "localhost.localdomain":
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def normalize_host(host: str) -> str:
    """A host as compared against lists: lower case, without a trailing dot."""
    return host.strip().rstrip(".").lower()


def _effective(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address really reaches (mapped or NAT64), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _host_pattern_matches(pattern: str, host: str) -> bool:
    """``*.example.com`` matches any name below example.com (not example.com itself);
    anything else matches exactly."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


@dataclass(frozen=True)
class OutboundPolicy:
    """Where outbound requests may go: schemes, an optional host allow-list, and the
    blocked networks minus the explicitly allowed ones."""

    schemes: frozenset[str] = SUPPORTED_SCHEMES
    #: Exact host names or ``*.suffix`` patterns; empty = any host the networks allow.
    hosts: tuple[str, ...] = ()
    blocked: tuple[IPNetwork, ...] = field(
        default_factory=lambda: parse_networks(DEFAULT_BLOCKED_NETWORKS)
    )
    #: Allowed even inside a blocked network (e.g. loopback in development).
    allowed: tuple[IPNetwork, ...] = field(
        default_factory=lambda: parse_networks(DEFAULT_ALLOWED_NETWORKS)
    )

    def address_allowed(self, address: IPAddress) -> bool:
        """Whether a request may connect to ``address`` (an IPv4-mapped or NAT64 IPv6
        address is judged as the IPv4 address it reaches)."""
        address = _effective(address)
        if any(address in net for net in self.allowed if net.version == address.version):
            return True
        return not any(address in net for net in self.blocked if net.version == address.version)

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` passes the allow-list (always, when there is none)."""
        host = normalize_host(host)
        return not self.hosts or any(
            _host_pattern_matches(normalize_host(p), host) for p in self.hosts
        )

    def check_url(self, url: str) -> str:
        """``url`` if a request may be sent there, else :class:`OutboundRefused`.

        A host name is judged by name here; :func:`check_resolved` judges the addresses
        it resolves to before each request (a name may resolve elsewhere later).
        """
        if len(url) > _MAX_URL:
            raise OutboundRefused("URL too long")
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError on a bad port
        except ValueError as exc:
            raise OutboundRefused(f"not a valid URL: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in self.schemes or scheme not in SUPPORTED_SCHEMES:
            allowed = " and ".join(sorted(self.schemes & SUPPORTED_SCHEMES)) or "no"
            raise OutboundRefused(f"only {allowed} URLs are allowed")
        host = normalize_host(parts.hostname or "")
        if not host:
            raise OutboundRefused("the URL has no host")
        if parts.username or parts.password:
            raise OutboundRefused("credentials in the URL are not allowed")
        if host in METADATA_HOSTNAMES:
            raise OutboundRefused(f"host {host} is a metadata service")
        if not self.host_allowed(host):
            raise OutboundRefused(f"host {host} is not on the allowed hosts list")
        address = host_address(host)
        if address is not None and not self.address_allowed(address):
            raise OutboundRefused(f"{host} is a forbidden address ({address})")
        return url


#: Resolves a host name to the addresses a connection to it could use.
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the system resolver, like the HTTP client's).

    Resolution failures raise ``OSError`` (``socket.gaierror``): a transient failure
    for the caller, not a refusal.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_resolved(
    url: str, policy: OutboundPolicy, *, resolve: Resolver = resolve_host
) -> tuple[IPAddress, ...]:
    """The addresses ``url``'s host resolves to, if every one may be reached now;
    else :class:`OutboundRefused` (call right before each request).

    The URL itself is checked again first: the policy may have tightened since it was
    configured.
    """
    policy.check_url(url)
    parts = urlsplit(url)
    host = normalize_host(parts.hostname or "")
    addresses: Sequence[IPAddress]
    try:  # an address literal connects where it says; anything else is resolved
        addresses = [ipaddress.ip_address(host.strip("[]").split("%")[0])]
    except ValueError:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        addresses = await resolve(host, port)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    for address in addresses:
        if not policy.address_allowed(address):
            raise OutboundRefused(f"{host} resolves to a forbidden address ({address})")
    return tuple(addresses)


class OutboundSettings(BaseSettings):
    """The outbound policy from the environment (``OUTBOUND_*``, lists as JSON)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    #: ``https`` and/or ``http``; ``["https"]`` refuses plain-text targets.
    outbound_allowed_schemes: list[str] = ["https", "http"]
    #: Exact host names or ``*.example.com`` suffixes; empty = any host that is allowed
    #: by the networks below.
    outbound_allowed_hosts: list[str] = []
    #: Networks outbound requests never reach ...
    outbound_blocked_networks: list[str] = list(DEFAULT_BLOCKED_NETWORKS)
    #: ... except these (loopback for development and tests; ``[]`` in production).
    outbound_allowed_networks: list[str] = list(DEFAULT_ALLOWED_NETWORKS)

    @field_validator("outbound_allowed_schemes")
    @classmethod
    def _supported_schemes(cls, value: list[str]) -> list[str]:
        schemes = [s.strip().lower() for s in value]
        unsupported = sorted(set(schemes) - SUPPORTED_SCHEMES)
        if unsupported:
            raise ValueError(f"unsupported schemes {unsupported}: only https and http")
        return schemes

    @field_validator("outbound_allowed_hosts")
    @classmethod
    def _host_patterns(cls, value: list[str]) -> list[str]:
        hosts = [normalize_host(h) for h in value if h.strip()]
        for host in hosts:
            if "*" in host[2:] or (host.startswith("*") and not host.startswith("*.")):
                raise ValueError(f"bad host pattern {host!r}: exact name or *.suffix")
        return hosts

    @field_validator("outbound_blocked_networks", "outbound_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # raises ValueError on a bad network: fail at start-up
        return value

    def outbound_policy(self) -> OutboundPolicy:
        return OutboundPolicy(
            schemes=frozenset(self.outbound_allowed_schemes),
            hosts=tuple(self.outbound_allowed_hosts),
            blocked=parse_networks(self.outbound_blocked_networks),
            allowed=parse_networks(self.outbound_allowed_networks),
        )
