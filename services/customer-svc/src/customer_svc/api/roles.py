"""Which role each customer-svc endpoint needs (issue 11): ``customers:pii`` for every
change to customer data (merge, unmerge, operator tags, tag rules, channel policies,
profile edits, complaints, CSV import, identity resolution) and for seeing personal data
unmasked.

Operator actions that recorded ``X-Operator`` before keep recording the caller's subject
(``CustomersOperator``). Routes that were open (profile edits, complaints, import,
resolve) need the role in ``AUTH_MODE=jwt`` and stay open in dev mode. The reads that
carry personal data (a customer, its card) need any valid token in jwt mode, and mask it
unless the token holds ``customers:pii``; in dev mode the ``X-Roles`` header decides
masking, as before. Other reads stay open.

Every applied change writes its row of the audit trail (two for a merge or an unmerge:
one per customer; one for a whole CSV import) in its own transaction, naming the caller
(``RequestActor``): the token's subject; on a route open in dev mode, the ``X-Operator``
header when sent, else ``anonymous``. A refused change, or a repeat that changes nothing,
writes none. Reading the trail (``GET /audit``) needs ``customers:pii``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from oms_servicekit.auth import (
    Principal,
    actor_in_jwt_mode,
    authenticator_of,
    current_principal,
    operator_with_role,
    role_in_jwt_mode,
)

PII_ROLE = "customers:pii"

#: The operator (token subject, or X-Operator in dev mode) holding ``customers:pii``.
CustomersOperator = Annotated[str, Depends(operator_with_role(PII_ROLE))]
# One callable, so a route naming it twice (route-level and through RequestActor) has it
# run, and the token checked, once per request.
_pii_in_jwt_mode = role_in_jwt_mode(PII_ROLE)
#: Route-level: ``customers:pii`` in jwt mode, open in dev mode.
PII_IN_JWT_MODE = [Depends(_pii_in_jwt_mode)]
#: The caller holding ``customers:pii`` in jwt mode; None in dev mode.
PiiEditor = Annotated[Principal | None, Depends(_pii_in_jwt_mode)]


#: The audited actor of a change on a route open in dev mode (see actor_in_jwt_mode).
RequestActor = Annotated[str, Depends(actor_in_jwt_mode(PII_ROLE))]


def _dev_header_grants(x_roles: str | None) -> bool:
    return x_roles is not None and PII_ROLE in {r.strip() for r in x_roles.split(",")}


async def sees_pii(
    request: Request,
    x_roles: Annotated[
        str | None,
        Header(description=f"AUTH_MODE=dev: comma-separated roles; {PII_ROLE} sees personal data"),
    ] = None,
) -> bool:
    """Whether the caller may see personal data unmasked: the token's roles in jwt mode
    (and a token is required), the ``X-Roles`` header in dev mode."""
    if authenticator_of(request).mode == "dev":
        return _dev_header_grants(x_roles)
    return (await current_principal(request)).has(PII_ROLE)


#: True when the caller sees personal data in full.
SeesPii = Annotated[bool, Depends(sees_pii)]
