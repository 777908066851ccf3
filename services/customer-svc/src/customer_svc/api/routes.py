"""customer-svc HTTP API: resolve a channel identity, read a customer."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from customer_svc.adapters.customer_repository import CustomerRepository
from customer_svc.api.schemas import CustomerOut, IdentityOut, ResolveIn, ResolveOut
from customer_svc.domain.identity import ChannelIdentity, normalize_email, normalize_phone
from customer_svc.resolution import resolve_customer
from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem

router = APIRouter()


@router.post(
    "/customers/resolve",
    response_model=ResolveOut,
    tags=["customers"],
    responses={
        200: {"description": "an existing customer matched"},
        201: {"description": "a new customer was created"},
    },
)
async def resolve(body: ResolveIn, runtime: RuntimeDep, response: Response) -> ResolveOut:
    """The customer id of a channel identity: exact identity, then phone, then e-mail,
    else a new customer."""
    # A caller that sends contact data means it: unusable data is an error here, while
    # from an order event it is only ignored for matching.
    if body.phone and body.phone.strip() and normalize_phone(body.phone) is None:
        raise Problem(422, "phone must be 6 to 15 digits, optionally after '+'", field="phone")
    if body.email and body.email.strip() and normalize_email(body.email) is None:
        raise Problem(422, "email is not an e-mail address", field="email")
    async with runtime.uow() as uow:
        resolved = await resolve_customer(
            uow,
            ChannelIdentity(
                channel=body.channel,
                platform_user_id=body.platform_user_id,
                name=body.name,
                phone=body.phone,
                email=body.email,
            ),
        )
        await uow.commit()
    response.status_code = status.HTTP_201_CREATED if resolved.new_customer else status.HTTP_200_OK
    return ResolveOut(customer_id=resolved.customer_id, matched_by=resolved.matched_by)


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerOut,
    tags=["customers"],
    responses={404: {"description": "unknown customer"}},
)
async def get_customer(customer_id: uuid.UUID, runtime: RuntimeDep) -> CustomerOut:
    async with runtime.uow() as uow:
        repo = CustomerRepository(uow.session)
        row = await repo.get_customer(customer_id)
        if row is None:
            raise Problem(status.HTTP_404_NOT_FOUND, f"unknown customer {customer_id}")
        linked = await repo.identities_of(customer_id)
    return CustomerOut(
        id=row["id"],
        display_name=row["display_name"],
        phone=row["phone_e164"],
        email=row["email_lower"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        identities=[IdentityOut(**{k: i[k] for k in IdentityOut.model_fields}) for i in linked],
    )
