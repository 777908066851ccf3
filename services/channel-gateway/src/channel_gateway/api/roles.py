"""Which role each channel-gateway endpoint needs (issue 11): ``channels:admin`` for
channel configuration (add, patch), SKU maps and order imports.

Imports record the caller's subject (``ChannelsAdmin``); configuration routes that were
open need the role in ``AUTH_MODE=jwt`` and stay open in dev mode. Webhooks are NOT
token-authenticated: platforms sign them, and the signature is the check. Reads stay open.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from oms_servicekit.auth import operator_with_role, role_in_jwt_mode

#: The operator (token subject, or X-Operator in dev mode) holding ``channels:admin``.
ChannelsAdmin = Annotated[str, Depends(operator_with_role("channels:admin"))]
#: Route-level: ``channels:admin`` in jwt mode, open in dev mode.
ADMIN_IN_JWT_MODE = [Depends(role_in_jwt_mode("channels:admin"))]
