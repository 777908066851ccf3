"""Which role each inventory-svc endpoint needs (issue 11), and who an audited action names.

``inventory:adjust`` for every change (warehouses, SKUs and their policies, receipts,
adjustments, transfers, ABC recompute, promotions, supply, sales-history import, forecast
refresh) and for reading the audit trail (``GET /audit``, in every auth mode).

Actions that were operator actions before roles existed record the caller's subject
(``InventoryAdjuster``); catalogue set-up that was open (warehouses, SKUs, policies) needs
the role in ``AUTH_MODE=jwt`` and stays open in dev mode (``CatalogueEditor``, which also
names the actor). Every applied change writes one row of the audit trail (who, what,
before/after) in the transaction that applies it; a refused one (401, 403, 404, 409, 422)
and a repeat that changes nothing write none. Reads stay open: stock levels are not
personal data and the channel feeds poll them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from oms_servicekit.auth import (
    OPERATOR_HEADER,
    Principal,
    dev_operator,
    operator_with_role,
    role_in_jwt_mode,
)

ADJUST_ROLE = "inventory:adjust"
#: Who the audit trail names when a dev-mode caller of an open route sends no X-Operator.
ANONYMOUS = "anonymous"

#: The operator (token subject, or X-Operator in dev mode) holding ``inventory:adjust``.
InventoryAdjuster = Annotated[str, Depends(operator_with_role(ADJUST_ROLE))]

_adjust_in_jwt_mode = role_in_jwt_mode(ADJUST_ROLE)
#: Route-level: ``inventory:adjust`` in jwt mode, open in dev mode.
ADJUST_IN_JWT_MODE = [Depends(_adjust_in_jwt_mode)]


async def catalogue_editor(
    request: Request, principal: Annotated[Principal | None, Depends(_adjust_in_jwt_mode)]
) -> str:
    """The actor of a catalogue change, for its audit row: in jwt mode the subject of a
    token holding ``inventory:adjust`` (401/403 otherwise); in dev mode, where these
    routes stay open, the ``X-Operator`` header when sent (400 if malformed), else
    ``anonymous``."""
    if principal is not None:
        return principal.subject
    header = request.headers.get(OPERATOR_HEADER)
    return ANONYMOUS if header is None or not header.strip() else dev_operator(header)


#: ``inventory:adjust`` in jwt mode, open in dev mode; the value is the audited actor.
CatalogueEditor = Annotated[str, Depends(catalogue_editor)]
