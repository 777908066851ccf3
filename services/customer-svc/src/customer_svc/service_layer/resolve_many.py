"""Resolving many channel identities in one transaction, as if one after the other.

The reference is :func:`customer_svc.resolution.resolve_customer` applied to each
identity in turn; here the whole run costs a fixed number of statements:

1. lock the contacts of every identity (one statement, in the one key order every
   resolution uses), read which identities are linked and which customers share a phone
   or an e-mail (three statements);
2. resolve every identity in order with the same rule (``domain.identity.resolve``), a
   customer created earlier in the run being a match for the identities after it,
   exactly as when they are resolved one by one;
3. write the new customers, the links and the addresses in one statement each, and look
   for a merge proposal per new customer (as one by one, only among the customers that
   existed before it).

Callers announce the new customers (``CustomerUpdated``) themselves, each naming its own
cause. A link lost to a concurrent resolution (another replica linked the same identity
between our read and our write) raises :class:`LinkLost`: the caller's transaction is
then rolled back and the identities resolved one by one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text

from customer_svc.adapters.customer_repository import CustomerRepository
from customer_svc.domain.identity import (
    ChannelIdentity,
    ContactKind,
    ContactMatch,
    MatchedBy,
    NormalizedIdentity,
    resolve,
)
from customer_svc.domain.matching import address_line
from customer_svc.profiles import MergeRequest, propose_merges
from customer_svc.resolution import ResolvedCustomer
from oms_messaging import UnitOfWork


class LinkLost(RuntimeError):
    """A concurrent resolution linked one of the run's identities first."""


_ADDRESSES = text(
    "INSERT INTO customer_addresses (customer_id, address_key, address, postal_code)"
    " SELECT c, k, a::jsonb, p FROM unnest(CAST(:customers AS uuid[]), CAST(:keys AS text[]),"
    " CAST(:addresses AS text[]), CAST(:postals AS text[])) AS x(c, k, a, p)"
    " ON CONFLICT DO NOTHING RETURNING customer_id, address_key"
)


@dataclass(frozen=True)
class Resolutions:
    """Each identity's answer, in the order asked, and the customers the run created,
    in the order it created them."""

    resolved: list[ResolvedCustomer]
    created: list[uuid.UUID]


async def resolve_identities(uow: UnitOfWork, identities: Sequence[ChannelIdentity]) -> Resolutions:
    """The customer of each identity, creating and linking as the rule says."""
    idents = [identity.normalized() for identity in identities]
    session = uow.session
    repo = CustomerRepository(session)
    phones = {i.phone for i in idents if i.phone}
    emails = {i.email for i in idents if i.email}
    await repo.lock_contacts_many(phones, emails)
    linked = await repo.linked_many(sorted({(i.channel, i.platform_user_id) for i in idents}))
    matches = await repo.contact_matches_many(phones, emails)
    now = (await session.execute(text("SELECT now()"))).scalar_one()
    created: list[tuple[uuid.UUID, NormalizedIdentity]] = []
    links: list[tuple[NormalizedIdentity, uuid.UUID]] = []
    answers: list[tuple[uuid.UUID, MatchedBy]] = []
    for ident in idents:
        key = (ident.channel, ident.platform_user_id)
        if key in linked:
            answers.append((linked[key], "platform_id"))
            continue
        candidates = [
            *matches.get(("phone", ident.phone or ""), []),
            *matches.get(("email", ident.email or ""), []),
        ]
        decision = resolve(None, candidates)
        customer_id = decision.customer_id or uuid.uuid4()
        if decision.is_new:
            created.append((customer_id, ident))
        links.append((ident, customer_id))
        linked[key] = customer_id
        answers.append((customer_id, decision.matched_by))
        # The identities after this one match the customer by this one's contacts, as
        # they would once it is linked (a new customer was created at the transaction's
        # start time, like every customer created in it).
        contacts: tuple[tuple[ContactKind, str | None], ...] = (
            ("phone", ident.phone),
            ("email", ident.email),
        )
        for kind, value in contacts:
            if value and not any(
                m.customer_id == customer_id for m in matches.get((kind, value), [])
            ):
                matches.setdefault((kind, value), []).append(ContactMatch(customer_id, now, kind))
    await repo.create_customers(created)
    if await repo.link_identities(links) != len(links):
        raise LinkLost("an identity of this run was linked meanwhile")
    resolved = [ResolvedCustomer(customer_id, matched_by) for customer_id, matched_by in answers]
    resolved = await _record_addresses(uow, identities, resolved)
    resolved = await _propose_merges(uow, idents, identities, resolved, created)
    return Resolutions(resolved, [customer_id for customer_id, _ in created])


async def _record_addresses(
    uow: UnitOfWork, identities: Sequence[ChannelIdentity], resolved: list[ResolvedCustomer]
) -> list[ResolvedCustomer]:
    """Keep every address new to its customer; the first identity bringing it is the
    one whose resolution added it (as one by one)."""
    rows: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
    first: dict[tuple[uuid.UUID, str], int] = {}
    for position, (identity, answer) in enumerate(zip(identities, resolved, strict=True)):
        address = identity.address
        key = address_line(address)
        if key is not None and address is not None:
            rows.setdefault((answer.customer_id, key), dict(address))
            first.setdefault((answer.customer_id, key), position)
    if not rows:
        return resolved
    # In key order, the order every run uses: two runs adding the same addresses wait
    # for each other instead of deadlocking.
    rows = dict(sorted(rows.items(), key=lambda item: (str(item[0][0]), item[0][1])))
    added = await uow.session.execute(
        _ADDRESSES,
        {
            "customers": [c for c, _ in rows],
            "keys": [k for _, k in rows],
            "addresses": [json.dumps(a) for a in rows.values()],
            "postals": [a.get("postal_code") for a in rows.values()],
        },
    )
    out = list(resolved)
    for customer_id, key in added:
        position = first[(customer_id, key)]
        out[position] = replace(out[position], address_added=True)
    return out


async def _propose_merges(
    uow: UnitOfWork,
    idents: list[NormalizedIdentity],
    identities: Sequence[ChannelIdentity],
    resolved: list[ResolvedCustomer],
    created: list[tuple[uuid.UUID, NormalizedIdentity]],
) -> list[ResolvedCustomer]:
    """A merge proposal per new customer, among the customers that existed before it
    (the ones created after it in this run are left out, as one by one); it is the
    answer of the identity that created the customer."""
    order = [customer_id for customer_id, _ in created]
    creator: dict[uuid.UUID, int] = {}
    for position, answer in enumerate(resolved):
        if answer.new_customer:
            creator.setdefault(answer.customer_id, position)
    proposals = await propose_merges(
        uow.session,
        [
            MergeRequest(
                customer_id,
                idents[creator[customer_id]].name,
                identities[creator[customer_id]].address,
                exclude=frozenset(order[index + 1 :]),
            )
            for index, customer_id in enumerate(order)
        ],
    )
    out = list(resolved)
    for customer_id, proposal in zip(order, proposals, strict=True):
        if proposal is not None:
            position = creator[customer_id]
            out[position] = replace(out[position], merge_proposal=proposal)
    return out
