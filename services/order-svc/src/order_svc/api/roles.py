"""Which role each order-svc endpoint needs (issue 11).

``orders:write``: placing an order (front ends), every action on an order (cancel, pick,
ship, deliver, refund), resolving an exception, replacing the workflow rules.
``orders:read``: the reads that return orders, exceptions and SLA figures, enforced in
``AUTH_MODE=jwt`` only (dev mode keeps them open). Webhook-style callbacks (the credit
bureau's) stay signature-authenticated and take no token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from oms_servicekit.auth import Principal, operator_with_role, role_in_jwt_mode

#: The operator (token subject, or X-Operator in dev mode) holding ``orders:write``.
OrdersWriter = Annotated[str, Depends(operator_with_role("orders:write"))]
#: ``orders:write`` in jwt mode; open in dev mode (front ends place orders without a header).
OrderPlacer = Annotated[Principal | None, Depends(role_in_jwt_mode("orders:write"))]
#: ``orders:read`` in jwt mode; open in dev mode.
OrdersReader = Annotated[Principal | None, Depends(role_in_jwt_mode("orders:read"))]
#: Route-level form of ``OrdersReader`` for the GET decorators.
ORDERS_READ = [Depends(role_in_jwt_mode("orders:read"))]
