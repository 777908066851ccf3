"""Which role each order-svc endpoint needs (issue 11), and who an audited action names.

``orders:write``: placing an order (front ends), every action on an order (cancel, pick,
ship, deliver, refund), resolving an exception, replacing the workflow rules. Each of
these, once applied, writes one row of the audit trail (who, what, before/after) in the
transaction that applies it; a refused one (401, 403, 404, 409, 422) writes none.
``orders:read``: the reads that return orders, exceptions, SLA figures and the audit
trail, enforced in ``AUTH_MODE=jwt`` only (dev mode keeps them open) except ``GET
/audit``, which needs it in every mode. A partner's token (a ``channel`` claim) reads
its own channel's orders under ``/channels/{channel}/orders`` without ``orders:read``
and nothing else. Webhook-style callbacks (the credit bureau's) stay
signature-authenticated, take no token and are not audited (the check keeps its own
record).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request

from oms_servicekit.auth import (
    Principal,
    actor_in_jwt_mode,
    authenticator_of,
    current_principal,
    operator_with_role,
    role_in_jwt_mode,
    sees_personal_data,
)
from oms_servicekit.problems import Problem

#: The operator (token subject, or X-Operator in dev mode) holding ``orders:write``.
OrdersWriter = Annotated[str, Depends(operator_with_role("orders:write"))]


#: ``orders:write`` in jwt mode; open in dev mode (front ends place orders without a
#: header). The value is the actor the audit trail records.
OrderPlacer = Annotated[str, Depends(actor_in_jwt_mode("orders:write"))]
#: ``orders:read`` in jwt mode; open in dev mode.
OrdersReader = Annotated[Principal | None, Depends(role_in_jwt_mode("orders:read"))]
#: Route-level form of ``OrdersReader`` for the GET decorators.
ORDERS_READ = [Depends(role_in_jwt_mode("orders:read"))]


#: Enforces ``orders:read`` (jwt mode) and says whether personal data is shown unmasked.
SeesPersonalData = Annotated[bool, Depends(sees_personal_data("orders:read"))]


#: The answer to a channel or an order a partner may not see (or that does not exist).
NO_SUCH_CHANNEL = "no such channel"
NO_SUCH_ORDER = "no such order"


def channel_reader(not_found: str) -> Callable[..., Awaitable[None]]:
    """Who may read under ``/channels/{channel}/orders``: a partner's token (``channel``
    claim) only its own channel, whatever roles it lists; any other channel answers 404
    with ``not_found``, exactly as what does not exist, so a partner learns nothing of
    the others. A token without the claim (an operator) needs ``orders:read`` and reads
    any channel. Dev mode is open like the other reads: it has no partners, and no
    header stands in for the claim."""

    async def dependency(
        request: Request, channel: Annotated[str, Path(min_length=1, max_length=64)]
    ) -> None:
        if authenticator_of(request).mode == "dev":
            return
        principal = await current_principal(request)
        if principal.channel is not None:
            if principal.channel != channel:
                raise Problem(404, not_found)
            return
        if not principal.has("orders:read"):
            raise Problem(403, "this read needs the role orders:read or a partner token")

    return dependency


#: Route-level guards of the partner-facing reads (a channel's list, one of its orders).
CHANNEL_LIST_READ = [Depends(channel_reader(NO_SUCH_CHANNEL))]
CHANNEL_ORDER_READ = [Depends(channel_reader(NO_SUCH_ORDER))]
