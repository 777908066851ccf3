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

from fastapi import Depends

from oms_servicekit.auth import (
    actor_in_jwt_mode,
    operator_with_role,
    role_in_jwt_mode,
)

ADJUST_ROLE = "inventory:adjust"

#: The operator (token subject, or X-Operator in dev mode) holding ``inventory:adjust``.
InventoryAdjuster = Annotated[str, Depends(operator_with_role(ADJUST_ROLE))]

_adjust_in_jwt_mode = role_in_jwt_mode(ADJUST_ROLE)
#: Route-level: ``inventory:adjust`` in jwt mode, open in dev mode.
ADJUST_IN_JWT_MODE = [Depends(_adjust_in_jwt_mode)]


#: ``inventory:adjust`` in jwt mode, open in dev mode; the value is the audited actor.
CatalogueEditor = Annotated[str, Depends(actor_in_jwt_mode(ADJUST_ROLE))]
