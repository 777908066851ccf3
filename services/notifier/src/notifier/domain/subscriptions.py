"""Who gets which alert, and where a webhook may point. Pure logic, no I/O.

A subscription names event types, an optional filter (channel, warehouse) and one target:
a webhook URL, an e-mail address or the board. Webhook URLs are outgoing requests this
service makes on an operator's word, so they pass the shared outbound policy
(:mod:`oms_servicekit.outbound`: schemes, allowed hosts, never link-local, metadata or
otherwise blocked addresses; loopback only where the policy allows it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from oms_servicekit.outbound import OutboundPolicy, OutboundRefused

TargetType = Literal["webhook", "email", "board"]

#: Where webhooks may point: the service's outbound policy (``OUTBOUND_*`` settings).
TargetPolicy = OutboundPolicy

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class TargetRefused(ValueError):
    """A subscription target that may not be used; ``str()`` says why."""


def check_webhook_url(url: str, policy: TargetPolicy) -> str:
    """``url`` if a webhook may be sent there, else :class:`TargetRefused`.

    Host names are checked by name here; the sender checks the addresses they resolve
    to again before each request (a name may resolve elsewhere later).
    """
    try:
        return policy.check_url(url)
    except OutboundRefused as exc:
        raise TargetRefused(str(exc)) from exc


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
