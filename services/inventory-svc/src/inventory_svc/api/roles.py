"""Which role each inventory-svc endpoint needs (issue 11): ``inventory:adjust`` for
every change (warehouses, SKUs and their policies, receipts, adjustments, transfers, ABC
recompute, promotions, supply, sales-history import, forecast refresh).

Actions that were operator actions before roles existed record the caller's subject
(``InventoryAdjuster``); catalogue set-up that was open (warehouses, SKUs, policies) needs
the role in ``AUTH_MODE=jwt`` and stays open in dev mode (``ADJUST_IN_JWT_MODE``). Reads
stay open: stock levels are not personal data and the channel feeds poll them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from oms_servicekit.auth import operator_with_role, role_in_jwt_mode

#: The operator (token subject, or X-Operator in dev mode) holding ``inventory:adjust``.
InventoryAdjuster = Annotated[str, Depends(operator_with_role("inventory:adjust"))]
#: Route-level: ``inventory:adjust`` in jwt mode, open in dev mode.
ADJUST_IN_JWT_MODE = [Depends(role_in_jwt_mode("inventory:adjust"))]
