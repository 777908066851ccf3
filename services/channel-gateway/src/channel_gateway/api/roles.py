"""Which role each channel-gateway endpoint needs (issue 11): ``channels:admin`` for
channel configuration (add, patch), SKU maps and order imports.

Imports record the caller's subject (``ChannelsAdmin``); configuration routes that were
open need the role in ``AUTH_MODE=jwt`` and stay open in dev mode. Webhooks are NOT
token-authenticated: platforms sign them, and the signature is the check. Reading the
configuration (channels, SKU maps, deliveries) needs ``channels:admin`` in jwt mode too: it
names marketplaces and their app keys (session keys are never shown).

Every applied configuration change and every import writes one row of the audit trail
(``GET /audit``, which needs ``channels:admin``) naming the caller (``RequestActor``): the
token's subject; on a route open in dev mode, the ``X-Operator`` header when sent, else
``anonymous``. Webhook deliveries are not operator actions: their record is the delivery
audit (``/channels/{channel}/deliveries``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from oms_servicekit.auth import (
    actor_in_jwt_mode,
    operator_with_role,
    role_in_jwt_mode,
)

ADMIN_ROLE = "channels:admin"
#: The operator (token subject, or X-Operator in dev mode) holding ``channels:admin``.
ChannelsAdmin = Annotated[str, Depends(operator_with_role(ADMIN_ROLE))]
# One callable, so a route naming it twice (route-level and through RequestActor) has it
# run, and the token checked, once per request.
_admin_in_jwt_mode = role_in_jwt_mode(ADMIN_ROLE)
#: Route-level: ``channels:admin`` in jwt mode, open in dev mode.
ADMIN_IN_JWT_MODE = [Depends(_admin_in_jwt_mode)]


#: The audited actor of a change on a route open in dev mode (see actor_in_jwt_mode).
RequestActor = Annotated[str, Depends(actor_in_jwt_mode(ADMIN_ROLE))]
