"""Who gets which alert, and where a webhook may point. Pure logic, no I/O.

A subscription names event types, an optional filter (channel, warehouse) and one target:
a webhook URL, an e-mail address or the board. Webhook URLs are outgoing requests this
service makes on an operator's word, so they are checked against server-side request
forgery: http(s) only, and never link-local, cloud-metadata or otherwise reserved
addresses. Loopback is allowed only where the policy says so (development and tests).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

TargetType = Literal["webhook", "email", "board"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Addresses a webhook must never reach (unless an allow-list entry says otherwise).
DEFAULT_BLOCKED_NETWORKS: tuple[str, ...] = (
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",  # link-local, incl. the 169.254.169.254 metadata service
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "fe80::/10",
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "ff00::/8",
)
#: Host names of metadata services (refused whatever they resolve to).
BLOCKED_HOSTNAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data"}
)
_LOCALHOST = frozenset({"localhost", "localhost.localdomain"})
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class TargetRefused(ValueError):
    """A subscription target that may not be used; ``str()`` says why."""


@dataclass(frozen=True)
class TargetPolicy:
    """Where webhooks may point: blocked networks, minus the explicitly allowed ones."""

    blocked: tuple[IPNetwork, ...] = field(
        default_factory=lambda: parse_networks(DEFAULT_BLOCKED_NETWORKS)
    )
    #: Allowed even inside a blocked network (e.g. loopback in development).
    allowed: tuple[IPNetwork, ...] = field(
        default_factory=lambda: parse_networks(("127.0.0.0/8", "::1/128"))
    )

    def address_allowed(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in net for net in self.allowed if net.version == address.version):
            return True
        return not any(address in net for net in self.blocked if net.version == address.version)


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def check_webhook_url(url: str, policy: TargetPolicy) -> str:
    """``url`` if a webhook may be sent there, else :class:`TargetRefused`.

    Host names are checked by name here; the sender checks the addresses they resolve
    to again before each request (a name may resolve elsewhere later).
    """
    if len(url) > 2000:
        raise TargetRefused("URL too long")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    del port
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs are allowed")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not allowed")
    if host in BLOCKED_HOSTNAMES:
        raise TargetRefused(f"host {host} is a metadata service")
    address = host_address(host)
    if address is not None and not policy.address_allowed(address):
        raise TargetRefused(f"address {address} is not allowed")
    return url


def host_address(host: str) -> IPAddress | None:
    """The address a host names literally (``localhost`` is loopback), else None."""
    if host in _LOCALHOST:
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_email(address: str) -> str:
    """``address`` if it looks like a deliverable mailbox, else :class:`TargetRefused`."""
    if len(address) > 254 or not _EMAIL.match(address) or "\n" in address or "\r" in address:
        raise TargetRefused("not a valid e-mail address")
    return address


@dataclass(frozen=True)
class SubscriptionView:
    """What matching needs of a subscription."""

    event_types: Sequence[str]
    channel: str | None = None
    warehouse: str | None = None


def matches(
    subscription: SubscriptionView,
    *,
    event_type: str,
    channel: str | None,
    warehouse: str | None,
) -> bool:
    """Whether an alert of ``event_type`` about ``channel``/``warehouse`` goes to it.

    A filter set on the subscription must be met: an alert that names no channel does
    not reach a subscription for one channel.
    """
    if event_type not in subscription.event_types:
        return False
    if subscription.channel is not None and subscription.channel != channel:
        return False
    return subscription.warehouse is None or subscription.warehouse == warehouse
