"""Customer profile operations inside the caller's unit of work: addresses, merge
proposals, orders kept from order events, tags (rule and operator), merges, and the
``CustomerUpdated`` every change announces. Operator actions (operator tags, merges)
write their audit-trail rows here, in the same unit of work as the change."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, text, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from customer_svc.adapters.order_totals import OrderTotalsStore
from customer_svc.adapters.tables import (
    complaints,
    customer_addresses,
    customer_orders,
    customer_tags,
    customers,
    identities,
    merge_proposals,
    merges,
    tag_rules,
)
from customer_svc.domain.matching import Candidate, address_line, best_fuzzy_match
from customer_svc.domain.profile import requirement_list
from customer_svc.domain.tagging import (
    LONGEST_WINDOW_DAYS,
    OrderFact,
    TagRule,
    diff_rule_tags,
    facts_from_totals,
    rule_tags,
)
from oms_contracts.events import CustomerMerged, CustomerUpdated
from oms_messaging import UnitOfWork
from oms_servicekit.audit import record_audit

log = logging.getLogger(__name__)

#: How many address candidates a fuzzy match compares at most.
_CANDIDATE_LIMIT = 500


def _now() -> datetime:
    return datetime.now(UTC)


# -- addresses and merge proposals ---------------------------------------------------


async def record_address(
    session: AsyncSession, customer_id: uuid.UUID, address: Mapping[str, Any] | None
) -> bool:
    """Keep ``address`` among the customer's addresses; True if it is new to them."""
    key = address_line(address)
    if key is None or address is None:
        return False
    result = await session.execute(
        pg_insert(customer_addresses)
        .values(
            customer_id=customer_id,
            address_key=key,
            address=dict(address),
            postal_code=address.get("postal_code"),
        )
        .on_conflict_do_nothing()
        .returning(customer_addresses.c.address_key)
    )
    return result.first() is not None


@dataclass(frozen=True)
class MergeProposal:
    id: uuid.UUID
    candidate_id: uuid.UUID
    name_score: float
    address_score: float


@dataclass(frozen=True)
class MergeRequest:
    """A new customer to compare with the customers that existed before it.

    ``exclude``: customers not to consider (a batch's customers created after this one,
    which one by one would not exist yet)."""

    customer_id: uuid.UUID
    name: str | None
    address: Mapping[str, Any] | None
    exclude: frozenset[uuid.UUID] = frozenset()


#: Up to ``limit`` candidate addresses per new customer, all new customers in one
#: statement: those at the same address and those in the same postal code, each looked up
#: on its own (``LATERAL``, the customer by primary key with ``LIMIT 1`` so that
#: PostgreSQL does not flatten it into a join): index lookups whatever the statistics of
#: a young database say. An ``OR`` of the two, without an index on the address, read
#: every address on file once per new customer.
_CANDIDATES = text(
    "SELECT x.n, c.id, c.display_name, u.address_key"
    " FROM unnest(CAST(:keys AS text[]), CAST(:postals AS text[])) WITH ORDINALITY"
    " AS x(k, p, n)"
    " CROSS JOIN LATERAL ("
    "  (SELECT a.customer_id, a.address_key FROM customer_addresses a"
    "    WHERE a.address_key = x.k"
    "   UNION ALL"
    "   SELECT a.customer_id, a.address_key FROM customer_addresses a"
    "    WHERE x.p IS NOT NULL AND a.postal_code = x.p AND a.address_key <> x.k)"
    "  LIMIT :limit"
    " ) u"
    " CROSS JOIN LATERAL (SELECT c.id, c.display_name FROM customers c"
    "  WHERE c.id = u.customer_id AND c.merged_into IS NULL LIMIT 1) c"
)


async def propose_merge(
    session: AsyncSession,
    customer_id: uuid.UUID,
    name: str | None,
    address: Mapping[str, Any] | None,
    *,
    exclude: Iterable[uuid.UUID] = (),
) -> MergeProposal | None:
    """Store (and return) a merge proposal when another customer has a similar name at
    a similar address. Never merges."""
    request = MergeRequest(customer_id, name, address, frozenset(exclude))
    return (await propose_merges(session, [request]))[0]


async def propose_merges(
    session: AsyncSession, requests: list[MergeRequest]
) -> list[MergeProposal | None]:
    """:func:`propose_merge` for many new customers: one candidate read and one insert
    for all of them, each request answered as it would be alone (its own customer and
    its exclusions left out of its candidates)."""
    answers: list[MergeProposal | None] = [None] * len(requests)
    asked = [
        (i, r, key)
        for i, r in enumerate(requests)
        if r.name and r.address is not None and (key := address_line(r.address)) is not None
    ]
    if not asked:
        return answers
    widest = max(len(r.exclude) for _, r, _ in asked) + 1
    rows = await session.execute(
        _CANDIDATES,
        {
            "keys": [key for _, _, key in asked],
            "postals": [(r.address or {}).get("postal_code") or None for _, r, _ in asked],
            "limit": _CANDIDATE_LIMIT + widest,
        },
    )
    found: dict[int, list[Candidate]] = {}
    for n, candidate_id, display_name, address_key in rows:
        found.setdefault(n - 1, []).append(Candidate(candidate_id, display_name, address_key))
    made: list[dict[str, Any]] = []
    for position, (i, request, key) in enumerate(asked):
        left_out = request.exclude | {request.customer_id}
        candidates = [c for c in found.get(position, []) if c.customer_id not in left_out]
        match = best_fuzzy_match(request.name, key, candidates[:_CANDIDATE_LIMIT])
        if match is None:
            continue
        proposal = MergeProposal(
            uuid.uuid4(), match.candidate_id, match.name_score, match.address_score
        )
        answers[i] = proposal
        made.append(
            {
                "id": proposal.id,
                "customer_id": request.customer_id,
                "candidate_id": proposal.candidate_id,
                "name_score": proposal.name_score,
                "address_score": proposal.address_score,
                "status": "open",
            }
        )
        log.info(
            "merge proposed",
            extra={
                "customer_id": str(request.customer_id),
                "candidate_id": str(match.candidate_id),
            },
        )
    if made:
        await session.execute(insert(merge_proposals), made)
    return answers


# -- orders --------------------------------------------------------------------------


async def record_order(
    session: AsyncSession,
    customer_id: uuid.UUID,
    *,
    order_id: uuid.UUID,
    channel: str,
    total: Decimal,
    currency: str,
    item_count: int,
    delivery_requirements: list[str],
    ordered_at: datetime,
) -> bool:
    requirements = sorted(set(delivery_requirements))
    result = await session.execute(
        pg_insert(customer_orders)
        .values(
            order_id=order_id,
            customer_id=customer_id,
            channel=channel,
            total=total,
            currency=currency,
            item_count=item_count,
            delivery_requirements=requirements,
            status="created",
            ordered_at=ordered_at,
        )
        .on_conflict_do_nothing()
        .returning(customer_orders.c.order_id)
    )
    if result.first() is None:
        return False
    fact = OrderFact(total, item_count, requirements, "created", channel, ordered_at)
    await OrderTotalsStore(session).count_order(customer_id, fact, 1)
    return True


async def set_order_status(
    session: AsyncSession, order_id: uuid.UUID, status: str
) -> uuid.UUID | None:
    """The order's customer, after recording its status (None: an order we never saw).
    A cancellation takes the order out of the customer's running totals."""
    row = (
        await session.execute(
            select(customer_orders).where(customer_orders.c.order_id == order_id).with_for_update()
        )
    ).first()
    if row is None:
        return None
    await session.execute(
        update(customer_orders).where(customer_orders.c.order_id == order_id).values(status=status)
    )
    if status == "cancelled" and row.status != "cancelled":
        fact = OrderFact(
            row.total,
            row.item_count,
            list(row.delivery_requirements or []),
            row.status,
            row.channel,
            row.ordered_at,
        )
        await OrderTotalsStore(session).count_order(row.customer_id, fact, -1)
    customer_id: uuid.UUID = row.customer_id
    return customer_id


async def orders_of(session: AsyncSession, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(customer_orders)
        .where(customer_orders.c.customer_id == customer_id)
        .order_by(customer_orders.c.ordered_at.desc(), customer_orders.c.order_id)
    )
    return [dict(r._mapping) for r in rows]


# -- tags and CustomerUpdated ---------------------------------------------------------


async def tags_of(session: AsyncSession, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(customer_tags)
        .where(customer_tags.c.customer_id == customer_id)
        .order_by(customer_tags.c.tag)
    )
    return [dict(r._mapping) for r in rows]


async def emit_updated(uow: UnitOfWork, customer_id: uuid.UUID, changed: Iterable[str]) -> None:
    """Announce a change with the customer's current delivery requirements and tags."""
    session = uow.session
    delivery = (
        await session.execute(
            select(customers.c.delivery_requirements).where(customers.c.id == customer_id)
        )
    ).scalar_one_or_none()
    tags = [t["tag"] for t in await tags_of(session, customer_id)]
    now = _now()
    await session.execute(
        update(customers).where(customers.c.id == customer_id).values(updated_at=now)
    )
    await uow.emit(
        CustomerUpdated(
            customer_id=customer_id,
            changed_fields=sorted(set(changed)),
            delivery_requirements=requirement_list(delivery, tags),
            tags=tags,
            updated_at=now,
        )
    )


async def load_rules(session: AsyncSession) -> list[TagRule]:
    rows = await session.execute(select(tag_rules).order_by(tag_rules.c.position))
    return [TagRule(r.name, r.tag, r.expression) for r in rows]


async def customer_facts(
    session: AsyncSession, customer_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """The tag rules' facts, from the customer's running totals (never their history)."""
    since = now - timedelta(days=LONGEST_WINDOW_DAYS + 1)
    totals, days = await OrderTotalsStore(session).load(customer_id, since)
    return facts_from_totals(totals, days, now)


_TAGS_OF_MANY = text(
    "SELECT customer_id, tag, source FROM customer_tags"
    " WHERE customer_id = ANY(CAST(:ids AS uuid[]))"
)

#: The transaction cache's key for the tag rules (a batch of orders is tagged under one
#: rule set; rules are changed by operators in transactions of their own).
_RULES_KEY = "customer:tag-rules"
#: The transaction cache's key for the customers whose tags are due at commit.
_DUE_KEY = "customer:tags-due"


async def apply_tag_rules_at_commit(uow: UnitOfWork, customer_id: uuid.UUID) -> None:
    """Re-evaluate ``customer_id``'s tags once, just before this transaction commits,
    however many of the batch's orders are theirs: a buyer placing hundreds of orders in a
    burst costs one evaluation per batch, on the totals as the batch leaves them."""
    created = False

    async def new_set() -> dict[uuid.UUID, None]:
        nonlocal created
        created = True
        return {}

    due = await uow.cached(_DUE_KEY, new_set)
    due[customer_id] = None
    if created:

        async def evaluate() -> None:
            uow.forget(_DUE_KEY)  # a change made while evaluating starts a new round
            await apply_tag_rules_many(uow, list(due))

        uow.before_commit(evaluate)


async def apply_tag_rules(uow: UnitOfWork, customer_id: uuid.UUID) -> bool:
    """Re-evaluate the tag rules for one customer; announce a change if any. True if the
    tags changed."""
    return customer_id in await apply_tag_rules_many(uow, [customer_id])


async def apply_tag_rules_many(uow: UnitOfWork, customer_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Re-evaluate the tag rules for ``customer_ids`` (a batch's customers): their totals,
    day tallies and tags read in three statements, not three per customer; only a change
    writes and is announced. The customers whose tags changed."""
    changed: set[uuid.UUID] = set()
    if not customer_ids:
        return changed
    session = uow.session
    now = _now()
    rules = await uow.cached(_RULES_KEY, lambda: load_rules(session))
    since = now - timedelta(days=LONGEST_WINDOW_DAYS + 1)
    loaded = await OrderTotalsStore(session).load_many(customer_ids, since)
    current: dict[uuid.UUID, dict[str, str]] = {c: {} for c in customer_ids}
    for row in await session.execute(_TAGS_OF_MANY, {"ids": customer_ids}):
        current[row.customer_id][row.tag] = row.source
    for customer_id in customer_ids:
        totals, days = loaded[customer_id]
        wanted = rule_tags(rules, facts_from_totals(totals, days, now))
        if await _apply_tag_change(uow, customer_id, current[customer_id], wanted, now):
            changed.add(customer_id)
    return changed


async def _apply_tag_change(
    uow: UnitOfWork,
    customer_id: uuid.UUID,
    current: dict[str, str],
    wanted: dict[str, str],
    now: datetime,
) -> bool:
    change = diff_rule_tags(current, wanted)
    if not change.changed:
        return False
    session = uow.session
    if change.removed:
        await session.execute(
            delete(customer_tags).where(
                customer_tags.c.customer_id == customer_id,
                customer_tags.c.tag.in_(change.removed),
                customer_tags.c.source == "rule",
            )
        )
    for tag, rule in change.added.items():
        await session.execute(
            pg_insert(customer_tags)
            .values(customer_id=customer_id, tag=tag, source="rule", rule=rule, tagged_at=now)
            .on_conflict_do_nothing()
        )
    await emit_updated(uow, customer_id, ["tags"])
    return True


async def set_operator_tags(
    uow: UnitOfWork, customer_id: uuid.UUID, add: list[str], remove: list[str], actor: str
) -> None:
    """Add (as ``operator`` tags) and remove tags; audited with the customer's tags and
    their sources before and after, unless that changed nothing."""
    session = uow.session
    now = _now()
    before = {t["tag"]: t["source"] for t in await tags_of(session, customer_id)}
    for tag in add:
        await session.execute(
            pg_insert(customer_tags)
            .values(customer_id=customer_id, tag=tag, source="operator", rule=None, tagged_at=now)
            .on_conflict_do_update(
                index_elements=[customer_tags.c.customer_id, customer_tags.c.tag],
                set_={"source": "operator", "rule": None, "tagged_at": now},
            )
        )
    if remove:
        await session.execute(
            delete(customer_tags).where(
                customer_tags.c.customer_id == customer_id, customer_tags.c.tag.in_(remove)
            )
        )
    after = {t["tag"]: t["source"] for t in await tags_of(session, customer_id)}
    if after != before:
        await record_audit(
            session,
            actor=actor,
            action="tags",
            entity="customer",
            entity_id=customer_id,
            before={"tags": before},
            after={"tags": after},
        )
    await emit_updated(uow, customer_id, ["tags"])


# -- merges -------------------------------------------------------------------------


class MergeError(Exception):
    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field


async def _lock_customers(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = await session.execute(
        select(customers)
        .where(customers.c.id.in_(list(ids)))
        .order_by(customers.c.id)
        .with_for_update()
    )
    return {r.id: r for r in rows}


async def merge_customers(
    uow: UnitOfWork, surviving_id: uuid.UUID, merged_id: uuid.UUID, actor: str
) -> uuid.UUID:
    """Merge ``merged_id`` into ``surviving_id``: identities, orders, addresses and tags
    follow the survivor; audited and announced in the same transaction. The merge id."""
    session = uow.session
    if surviving_id == merged_id:
        raise MergeError(422, "a customer cannot be merged into itself", "merged_id")
    rows = await _lock_customers(session, [surviving_id, merged_id])
    for cid, field in ((surviving_id, "surviving_id"), (merged_id, "merged_id")):
        if cid not in rows:
            raise MergeError(404, f"unknown customer {cid}", field)
        if rows[cid].merged_into is not None:
            raise MergeError(409, f"customer {cid} is already merged", field)

    moved_identities = [
        [r.channel, r.platform_user_id]
        for r in await session.execute(
            update(identities)
            .where(identities.c.customer_id == merged_id)
            .values(customer_id=surviving_id)
            .returning(identities.c.channel, identities.c.platform_user_id)
        )
    ]
    moved_orders = [
        str(r.order_id)
        for r in await session.execute(
            update(customer_orders)
            .where(customer_orders.c.customer_id == merged_id)
            .values(customer_id=surviving_id)
            .returning(customer_orders.c.order_id)
        )
    ]
    survivor_tags = {t["tag"] for t in await tags_of(session, surviving_id)}
    merged_tags = await tags_of(session, merged_id)
    moved_tags = [t["tag"] for t in merged_tags if t["tag"] not in survivor_tags]
    await session.execute(
        update(customer_tags)
        .where(customer_tags.c.customer_id == merged_id, customer_tags.c.tag.in_(moved_tags))
        .values(customer_id=surviving_id)
    )
    moved_complaints = [
        str(r.id)
        for r in await session.execute(
            update(complaints)
            .where(complaints.c.customer_id == merged_id)
            .values(customer_id=surviving_id)
            .returning(complaints.c.id)
        )
    ]
    survivor_addresses = {
        r.address_key
        for r in await session.execute(
            select(customer_addresses.c.address_key).where(
                customer_addresses.c.customer_id == surviving_id
            )
        )
    }
    moved_addresses = [
        r.address_key
        for r in await session.execute(
            update(customer_addresses)
            .where(
                customer_addresses.c.customer_id == merged_id,
                customer_addresses.c.address_key.not_in(survivor_addresses)
                if survivor_addresses
                else true(),
            )
            .values(customer_id=surviving_id)
            .returning(customer_addresses.c.address_key)
        )
    ]
    now = _now()
    await session.execute(
        update(customers)
        .where(customers.c.id == merged_id)
        .values(merged_into=surviving_id, updated_at=now)
    )
    await session.execute(
        update(merge_proposals)
        .where(
            or_(
                (merge_proposals.c.customer_id == merged_id)
                & (merge_proposals.c.candidate_id == surviving_id),
                (merge_proposals.c.customer_id == surviving_id)
                & (merge_proposals.c.candidate_id == merged_id),
            ),
            merge_proposals.c.status == "open",
        )
        .values(status="accepted")
    )
    merge_id = uuid.uuid4()
    moved: dict[str, list[Any]] = {
        "identities": moved_identities,
        "orders": moved_orders,
        "tags": moved_tags,
        "complaints": moved_complaints,
        "addresses": moved_addresses,
    }
    await session.execute(
        insert(merges).values(
            id=merge_id,
            surviving_id=surviving_id,
            merged_id=merged_id,
            actor=actor,
            merged_at=now,
            moved=moved,
        )
    )
    await _audit_merge(uow, actor, "merge", merge_id, surviving_id, merged_id, moved)
    await uow.emit(
        CustomerMerged(surviving_id=surviving_id, merged_id=merged_id, actor=actor, merged_at=now)
    )
    await OrderTotalsStore(session).rebuild([surviving_id, merged_id])
    await apply_tag_rules(uow, surviving_id)
    return merge_id


async def unmerge_customer(
    uow: UnitOfWork, merged_id: uuid.UUID, actor: str
) -> tuple[uuid.UUID, uuid.UUID]:
    """Undo the active merge of ``merged_id`` while the survivor has had no new order
    since. Everything the merge moved moves back. The survivor's id and the merge id."""
    session = uow.session
    row = (
        await session.execute(
            select(merges)
            .where(merges.c.merged_id == merged_id, merges.c.unmerged_at.is_(None))
            .with_for_update()
        )
    ).first()
    if row is None:
        raise MergeError(404, f"customer {merged_id} is not merged")
    surviving_id: uuid.UUID = row.surviving_id
    await _lock_customers(session, [surviving_id, merged_id])
    since = (
        await session.execute(
            select(func.count())
            .select_from(customer_orders)
            .where(
                customer_orders.c.customer_id == surviving_id,
                customer_orders.c.recorded_at > row.merged_at,
            )
        )
    ).scalar_one()
    if since:
        raise MergeError(409, f"{since} order(s) placed since the merge: it cannot be undone")

    moved = row.moved
    for channel, user in moved["identities"]:
        await session.execute(
            update(identities)
            .where(identities.c.channel == channel, identities.c.platform_user_id == user)
            .values(customer_id=merged_id)
        )
    if moved["orders"]:
        await session.execute(
            update(customer_orders)
            .where(customer_orders.c.order_id.in_([uuid.UUID(o) for o in moved["orders"]]))
            .values(customer_id=merged_id)
        )
    if moved["tags"]:
        await session.execute(
            update(customer_tags)
            .where(
                customer_tags.c.customer_id == surviving_id, customer_tags.c.tag.in_(moved["tags"])
            )
            .values(customer_id=merged_id)
        )
    if moved["complaints"]:
        await session.execute(
            update(complaints)
            .where(complaints.c.id.in_([uuid.UUID(c) for c in moved["complaints"]]))
            .values(customer_id=merged_id)
        )
    if moved["addresses"]:
        await session.execute(
            update(customer_addresses)
            .where(
                customer_addresses.c.customer_id == surviving_id,
                customer_addresses.c.address_key.in_(moved["addresses"]),
            )
            .values(customer_id=merged_id)
        )
    now = _now()
    await session.execute(
        update(customers)
        .where(customers.c.id == merged_id)
        .values(merged_into=None, updated_at=now)
    )
    await session.execute(
        update(merges).where(merges.c.id == row.id).values(unmerged_at=now, unmerged_by=actor)
    )
    await _audit_merge(uow, actor, "unmerge", row.id, surviving_id, merged_id, moved)
    # The split is announced as a change of both customers; no contract event for it.
    await emit_updated(uow, merged_id, ["unmerged"])
    await emit_updated(uow, surviving_id, ["unmerged"])
    await OrderTotalsStore(uow.session).rebuild([surviving_id, merged_id])
    await apply_tag_rules(uow, surviving_id)
    await apply_tag_rules(uow, merged_id)
    merge_id: uuid.UUID = row.id
    return surviving_id, merge_id


async def _audit_merge(
    uow: UnitOfWork,
    actor: str,
    action: str,
    merge_id: uuid.UUID,
    surviving_id: uuid.UUID,
    merged_id: uuid.UUID,
    moved: Mapping[str, list[Any]],
) -> None:
    """A merge or unmerge changes two customers: one audit row each. The merged one's
    ``merged_into`` is set or cleared; the survivor gains or gives back what moved (how
    many of each: the lists themselves are in ``merges``, under the merge id)."""
    link = {"merged_into": str(surviving_id), "merge_id": str(merge_id)}
    gained = {
        "merge_id": str(merge_id),
        "merged_id": str(merged_id),
        "moved": {kind: len(items) for kind, items in moved.items()},
    }
    unlinked = {"merged_into": None}
    merged_before, merged_after = (unlinked, link) if action == "merge" else (link, unlinked)
    survivor_before, survivor_after = ({}, gained) if action == "merge" else (gained, {})
    for entity_id, before, after in (
        (merged_id, merged_before, merged_after),
        (surviving_id, survivor_before, survivor_after),
    ):
        await record_audit(
            uow.session,
            actor=actor,
            action=action,
            entity="customer",
            entity_id=entity_id,
            before=before,
            after=after,
        )
