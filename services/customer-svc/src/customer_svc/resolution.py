"""Resolving a channel identity to a customer id, inside the caller's unit of work.

Shared by the ``OrderCreated`` handler and ``POST /customers/resolve``: exact channel
identity, then E.164 phone, then e-mail link; a new customer whose name and address are
close to an existing customer's gets a stored merge PROPOSAL, never a merge. A new customer
is announced with ``CustomerUpdated(changed_fields=["created"])`` in the same
transaction that creates it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from customer_svc.adapters.customer_repository import CustomerRepository
from customer_svc.domain.identity import ChannelIdentity, MatchedBy, resolve
from customer_svc.profiles import MergeProposal, propose_merge, record_address
from oms_contracts.events import CustomerUpdated
from oms_messaging import UnitOfWork
from oms_servicekit.logging import mask

log = logging.getLogger(__name__)


class ResolutionConflictError(RuntimeError):
    """The identity lost an insert race but the winner's row cannot be read back."""


@dataclass(frozen=True)
class ResolvedCustomer:
    customer_id: uuid.UUID
    matched_by: MatchedBy
    #: A stored merge proposal when a new customer looks like an existing one.
    merge_proposal: MergeProposal | None = None
    #: The identity's address was new to the customer (and is now kept).
    address_added: bool = False

    @property
    def new_customer(self) -> bool:
        return self.matched_by == "new"

    @property
    def identity_linked(self) -> bool:
        """This resolution linked the identity to a customer (a new or a matched one)."""
        return self.matched_by != "platform_id"

    @property
    def changed(self) -> bool:
        """Whether resolving stored anything (what an audited caller records)."""
        return self.identity_linked or self.address_added


async def resolve_customer(uow: UnitOfWork, identity: ChannelIdentity) -> ResolvedCustomer:
    """The customer ``identity`` belongs to, creating and linking as the rule says."""
    repo = CustomerRepository(uow.session)
    ident = identity.normalized()

    linked = await repo.linked_customer(ident.channel, ident.platform_user_id)
    if linked is None and (ident.phone or ident.email):
        # Serialize with resolutions sharing this phone or e-mail, then look again: the
        # one that held the lock may have just linked this very identity.
        await repo.lock_contacts(ident.phone, ident.email)
        linked = await repo.linked_customer(ident.channel, ident.platform_user_id)
    matches = await repo.contact_matches(ident.phone, ident.email) if linked is None else []
    decision = resolve(linked, matches)

    if decision.customer_id is not None and decision.matched_by == "platform_id":
        result = ResolvedCustomer(decision.customer_id, "platform_id")
    else:
        customer_id = decision.customer_id or uuid.uuid4()
        # The savepoint undoes a customer created for an identity that, meanwhile, a
        # concurrent resolution linked first.
        savepoint = await uow.session.begin_nested()
        if decision.is_new:
            await repo.create_customer(customer_id, ident)
        if await repo.link_identity(ident, customer_id):
            await savepoint.commit()
            result = ResolvedCustomer(customer_id, decision.matched_by)
        else:
            await savepoint.rollback()
            winner = await repo.linked_customer(ident.channel, ident.platform_user_id)
            if winner is None:
                raise ResolutionConflictError("identity conflict but no linked customer found")
            result = ResolvedCustomer(winner, "platform_id")

    if await record_address(uow.session, result.customer_id, identity.address):
        result = replace(result, address_added=True)
    if result.new_customer:
        proposal = await propose_merge(
            uow.session, result.customer_id, ident.name, identity.address
        )
        if proposal is not None:
            result = replace(result, merge_proposal=proposal)
        await uow.emit(
            CustomerUpdated(
                customer_id=result.customer_id,
                changed_fields=["created"],
                updated_at=datetime.now(UTC),
            )
        )
    log.info(
        "customer resolved",
        extra={
            "customer_id": str(result.customer_id),
            "channel": ident.channel,
            "platform_user_id": mask(ident.platform_user_id),
            "matched_by": result.matched_by,
        },
    )
    return result
