"""customer-svc HTTP API: resolve identities, profiles and cards, merges, tags, imports.

Personal data (phone, e-mail, street address) is answered in full only to callers holding
``customers:pii`` (the token's roles; in dev mode the ``X-Roles`` header); everyone else
gets it masked. Which role each change needs: see ``customer_svc.api.roles``. Every
applied change writes its audit-trail row(s) before its unit of work commits.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from customer_svc.adapters.customer_repository import CustomerRepository
from customer_svc.adapters.order_totals import OrderTotalsStore
from customer_svc.adapters.tables import (
    channel_policies,
    complaints,
    customer_addresses,
    customers,
    identities,
    merge_proposals,
    tag_rules,
)
from customer_svc.api.roles import PII_IN_JWT_MODE, CustomersOperator, RequestActor, SeesPii
from customer_svc.api.schemas import (
    CardOut,
    ChannelPolicyIn,
    ComplaintIn,
    ComplaintOut,
    CustomerOut,
    CustomerPatch,
    IdentityOut,
    ImportRowOut,
    MergeIn,
    MergeOut,
    MergeProposalOut,
    OrderHistoryOut,
    OrderSummaryOut,
    ResolveIn,
    ResolveOut,
    TagOut,
    TagRuleIn,
    TagRulesIn,
    TagsIn,
)
from customer_svc.domain.identity import ChannelIdentity, normalize_email, normalize_phone
from customer_svc.domain.profile import (
    mask_address,
    mask_email,
    mask_phone,
    mask_text,
    missing_required,
)
from customer_svc.domain.tagging import RuleError, compile_rule
from customer_svc.profiles import (
    MergeError,
    apply_tag_rules,
    emit_updated,
    merge_customers,
    orders_of,
    set_operator_tags,
    tags_of,
    unmerge_customer,
)
from customer_svc.resolution import ResolvedCustomer, resolve_customer
from customer_svc.service_layer.resolve_requests import ResolveRequest, resolve_requests
from oms_servicekit.audit import record_audit
from oms_servicekit.http import RuntimeDep
from oms_servicekit.personal_data import mask_personal_fields
from oms_servicekit.problems import Problem

router = APIRouter()

#: How many of the latest orders a card lists.
CARD_LAST_ORDERS = 10
#: Rows a CSV import takes at most.
IMPORT_MAX_ROWS = 10_000


def _check_contacts(body: ResolveIn) -> None:
    # A caller that sends contact data means it: unusable data is an error here, while
    # from an order event it is only ignored for matching.
    if body.phone and body.phone.strip() and normalize_phone(body.phone) is None:
        raise Problem(422, "phone is not a possible phone number", field="phone")
    if body.email and body.email.strip() and normalize_email(body.email) is None:
        raise Problem(422, "email is not an e-mail address", field="email")


def _identity(body: ResolveIn) -> ChannelIdentity:
    return ChannelIdentity(
        channel=body.channel,
        platform_user_id=body.platform_user_id,
        name=body.name,
        phone=body.phone,
        email=body.email,
        address=body.address.model_dump(exclude={"name", "phone"}) if body.address else None,
    )


def _proposal_out(resolved: ResolvedCustomer) -> MergeProposalOut | None:
    p = resolved.merge_proposal
    if p is None:
        return None
    return MergeProposalOut(
        id=p.id, candidate_id=p.candidate_id, name_score=p.name_score, address_score=p.address_score
    )


@router.post(
    "/customers/resolve",
    response_model=ResolveOut,
    tags=["customers"],
    responses={
        200: {"description": "an existing customer matched"},
        201: {"description": "a new customer was created (maybe with a merge proposal)"},
    },
    dependencies=PII_IN_JWT_MODE,
)
async def resolve(
    body: ResolveIn, runtime: RuntimeDep, response: Response, actor: RequestActor
) -> ResolveOut:
    """The customer id of a channel identity: exact identity, then phone (E.164), then
    e-mail, else a new customer; a new customer with a similar name at a similar address
    as an existing one comes with a stored merge proposal (never a merge). A resolution
    that stores something (a customer, an identity link, an address) is audited; a
    lookup that only finds the linked customer is not."""
    _check_contacts(body)
    # Resolutions arriving together are resolved and committed together (a group
    # commit), with the answers of resolving them one after the other.
    resolved = await resolve_requests(runtime).resolve(ResolveRequest(_identity(body), actor))
    response.status_code = status.HTTP_201_CREATED if resolved.new_customer else status.HTTP_200_OK
    return ResolveOut(
        customer_id=resolved.customer_id,
        matched_by=resolved.matched_by,
        merge_proposal=_proposal_out(resolved),
    )


_IMPORT_COLUMNS = ("channel", "platform_user_id", "name", "phone", "email")
_ADDRESS_COLUMNS = ("region", "city", "line1", "postal_code")


@router.post(
    "/customers/import",
    response_model=list[ImportRowOut],
    tags=["customers"],
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    dependencies=PII_IN_JWT_MODE,
)
async def import_customers(
    request: Request, runtime: RuntimeDep, actor: RequestActor
) -> list[ImportRowOut]:
    """A CSV with a header row (channel, platform_user_id, name, phone, email, region,
    city, line1, postal_code): each row is resolved as ``/customers/resolve`` would, in
    its own transaction, and answered as created / matched / merge_proposed / rejected.

    A file that is refused as a whole (not UTF-8, no such columns, too many rows)
    changes nothing. An import is audited as one row (import id, the file's size and
    digest, the count of each outcome), written once the rows are done, even when a
    failure stops it half-way (``complete: false``), since its earlier rows stay."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(422, "the CSV must be UTF-8", field="body") from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = reader.fieldnames or []
        missing = [c for c in ("channel", "platform_user_id") if c not in header]
        if missing:
            raise Problem(422, f"missing column(s): {', '.join(missing)}", field="body")
        rows = list(reader)
    except csv.Error as exc:  # e.g. a bare CR in an unquoted field (found by the API fuzzer)
        raise Problem(422, f"not a readable CSV: {exc}", field="body") from None
    if len(rows) > IMPORT_MAX_ROWS:
        raise Problem(413, f"at most {IMPORT_MAX_ROWS} rows per import", field="body")
    out: list[ImportRowOut] = []
    complete = False
    try:
        for n, row in enumerate(rows, start=2):  # row 1 is the header
            out.append(await _import_row(runtime, n, row))
        complete = True
    finally:
        if out:
            await _audit_import(runtime, actor, raw, out, complete=complete)
    return out


async def _audit_import(
    runtime: Any, actor: str, raw: bytes, rows: list[ImportRowOut], *, complete: bool
) -> None:
    counts = {outcome: 0 for outcome in ("created", "matched", "merge_proposed", "rejected")}
    for row in rows:
        counts[row.outcome] += 1
    import_id = uuid.uuid4()
    async with runtime.uow() as uow:
        await record_audit(
            uow.session,
            actor=actor,
            action="import",
            entity="customer_import",
            entity_id=import_id,
            before=None,
            after={
                "bytes": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
                "rows": len(rows),
                "complete": complete,
                **counts,
            },
        )
        await uow.commit()


async def _import_row(runtime: Any, n: int, row: dict[str, Any]) -> ImportRowOut:
    if None in row:
        return ImportRowOut(row=n, outcome="rejected", reason="more values than columns")
    values = {k: (row.get(k) or "").strip() or None for k in _IMPORT_COLUMNS}
    address = {k: (row.get(k) or "").strip() or None for k in _ADDRESS_COLUMNS}
    body_data: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    if any(address.values()):
        body_data["address"] = {k: v for k, v in address.items() if v is not None}
    try:
        body = ResolveIn.model_validate(body_data)
        _check_contacts(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        return ImportRowOut(row=n, outcome="rejected", reason=f"{field}: {err['msg']}")
    except Problem as exc:
        return ImportRowOut(row=n, outcome="rejected", reason=f"{exc.field}: {exc.detail}")
    async with runtime.uow() as uow:
        resolved = await resolve_customer(uow, _identity(body))
        await uow.commit()
    if resolved.merge_proposal is not None:
        outcome = "merge_proposed"
    elif resolved.new_customer:
        outcome = "created"
    else:
        outcome = "matched"
    return ImportRowOut(
        row=n,
        outcome=outcome,  # type: ignore[arg-type]
        customer_id=resolved.customer_id,
        matched_by=resolved.matched_by,
        merge_proposal=_proposal_out(resolved),
    )


@router.post(
    "/customers/merge",
    response_model=MergeOut,
    status_code=201,
    tags=["customers"],
    responses={404: {"description": "unknown customer"}, 409: {"description": "merged"}},
)
async def merge(body: MergeIn, runtime: RuntimeDep, operator: CustomersOperator) -> MergeOut:
    """Merge ``merged_id`` into ``surviving_id`` (identities, orders, tags follow the
    survivor); audited and announced (``CustomerMerged``) in one transaction."""
    async with runtime.uow() as uow:
        try:
            merge_id = await merge_customers(uow, body.surviving_id, body.merged_id, operator)
        except MergeError as exc:
            raise Problem(exc.status, exc.detail, field=exc.field) from None
        await uow.commit()
    return MergeOut(merge_id=merge_id, surviving_id=body.surviving_id, merged_id=body.merged_id)


@router.post(
    "/customers/{customer_id}/unmerge",
    response_model=MergeOut,
    tags=["customers"],
    responses={404: {"description": "not merged"}, 409: {"description": "orders since"}},
)
async def unmerge(
    customer_id: uuid.UUID, runtime: RuntimeDep, operator: CustomersOperator
) -> MergeOut:
    """Undo the merge of ``customer_id`` (the merged one) while no order has been placed
    since the merge."""
    async with runtime.uow() as uow:
        try:
            surviving, merge_id = await unmerge_customer(uow, customer_id, operator)
        except MergeError as exc:
            raise Problem(exc.status, exc.detail, field=exc.field) from None
        await uow.commit()
    return MergeOut(merge_id=merge_id, surviving_id=surviving, merged_id=customer_id)


async def _customer_out(session: Any, customer_id: uuid.UUID, pii: bool) -> CustomerOut:
    repo = CustomerRepository(session)
    row = await repo.get_customer(customer_id)
    if row is None:
        raise Problem(status.HTTP_404_NOT_FOUND, f"unknown customer {customer_id}")
    linked = await repo.identities_of(customer_id)
    phone: Any = (lambda v: v) if pii else mask_phone
    email: Any = (lambda v: v) if pii else mask_email
    address: Any = (lambda v: v) if pii else mask_address
    name: Any = (lambda v: v) if pii else mask_text
    return CustomerOut(
        id=row["id"],
        display_name=name(row["display_name"]),
        phone=phone(row["phone_e164"]),
        email=email(row["email_lower"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        merged_into=row["merged_into"],
        identities=[
            IdentityOut(
                channel=i["channel"],
                platform_user_id=i["platform_user_id"],
                name=name(i["name"]),
                phone=phone(i["phone"]),
                email=email(i["email"]),
                created_at=i["created_at"],
            )
            for i in linked
        ],
        delivery_requirements=row["delivery_requirements"] or {},
        invoice=row["invoice"] if pii else mask_personal_fields(row["invoice"], personal=True),
        default_address=address(row["default_address"]),
        preferences=row["preferences"] or {},
    )


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerOut,
    tags=["customers"],
    responses={404: {"description": "unknown customer"}},
)
async def get_customer(customer_id: uuid.UUID, runtime: RuntimeDep, pii: SeesPii) -> CustomerOut:
    async with runtime.uow() as uow:
        return await _customer_out(uow.session, customer_id, pii)


@router.patch(
    "/customers/{customer_id}",
    response_model=CustomerOut,
    tags=["customers"],
    responses={404: {"description": "unknown customer"}, 422: {"description": "invalid"}},
)
async def patch_customer(
    customer_id: uuid.UUID,
    body: CustomerPatch,
    runtime: RuntimeDep,
    pii: SeesPii,
    actor: RequestActor,
) -> CustomerOut:
    """Change profile fields; each channel the customer is known on may require some
    (its policy). Announced with ``CustomerUpdated`` naming the changed fields and
    audited with their values before and after; a patch that changes nothing is
    neither."""
    patch = body.model_dump(exclude_unset=True, mode="json")
    for key, value in patch.items():
        if value is None:
            raise Problem(422, f"{key} cannot be null", field=key)
    async with runtime.uow() as uow:
        session = uow.session
        row = (
            await session.execute(
                select(customers).where(customers.c.id == customer_id).with_for_update()
            )
        ).first()
        if row is None:
            raise Problem(404, f"unknown customer {customer_id}")
        current = dict(row._mapping)
        changed = sorted(k for k, v in patch.items() if current.get(k) != v)
        profile = {**current, **patch}
        channels = [
            r.channel
            for r in await session.execute(
                select(identities.c.channel).where(identities.c.customer_id == customer_id)
            )
        ]
        required: list[str] = []
        for r in await session.execute(
            select(channel_policies.c.required_fields).where(
                channel_policies.c.channel.in_(channels)
            )
        ):
            required += [f for f in r.required_fields if f not in required]
        missing = missing_required(profile, required)
        if missing is not None:
            raise Problem(422, f"{missing} is required by a channel's policy", field=missing)
        if changed:
            await session.execute(
                update(customers)
                .where(customers.c.id == customer_id)
                .values(**{k: patch[k] for k in changed})
            )
            await record_audit(
                session,
                actor=actor,
                action="update",
                entity="customer",
                entity_id=customer_id,
                before={k: current.get(k) for k in changed},
                after={k: patch[k] for k in changed},
            )
            await emit_updated(uow, customer_id, changed)
        await uow.commit()
    async with runtime.uow() as uow:
        return await _customer_out(uow.session, customer_id, pii)


@router.put(
    "/channel-policies/{channel}",
    response_model=ChannelPolicyIn,
    tags=["customers"],
)
async def put_channel_policy(
    channel: str, body: ChannelPolicyIn, runtime: RuntimeDep, operator: CustomersOperator
) -> ChannelPolicyIn:
    """Which profile fields a channel requires (checked on every PATCH). Audited unless
    the policy was already exactly this."""
    async with runtime.uow() as uow:
        session = uow.session
        current = (
            await session.execute(
                select(channel_policies.c.required_fields)
                .where(channel_policies.c.channel == channel)
                .with_for_update()
            )
        ).first()
        before = None if current is None else {"required_fields": current.required_fields}
        after = {"required_fields": body.required_fields}
        if before != after:
            await session.execute(
                pg_insert(channel_policies)
                .values(channel=channel, required_fields=body.required_fields)
                .on_conflict_do_update(
                    index_elements=[channel_policies.c.channel],
                    set_={"required_fields": body.required_fields},
                )
            )
            await record_audit(
                session,
                actor=operator,
                action="put",
                entity="channel_policy",
                entity_id=channel,
                before=before,
                after=after,
            )
        await uow.commit()
    return body


@router.get("/customers/{customer_id}/card", response_model=CardOut, tags=["customers"])
async def card(customer_id: uuid.UUID, runtime: RuntimeDep, pii: SeesPii) -> CardOut:
    """Everything about a customer on one card."""
    async with runtime.uow() as uow:
        session = uow.session
        customer = await _customer_out(session, customer_id, pii)
        addresses = [
            r.address if pii else (mask_address(r.address) or {})
            for r in await session.execute(
                select(customer_addresses.c.address)
                .where(customer_addresses.c.customer_id == customer_id)
                .order_by(customer_addresses.c.created_at)
            )
        ]
        orders = await orders_of(session, customer_id)
        live = [o for o in orders if o["status"] != "cancelled"]
        complaint_rows = await session.execute(
            select(complaints)
            .where(complaints.c.customer_id == customer_id)
            .order_by(complaints.c.created_at.desc())
        )
        proposals = await session.execute(
            select(merge_proposals).where(
                merge_proposals.c.status == "open",
                (merge_proposals.c.customer_id == customer_id)
                | (merge_proposals.c.candidate_id == customer_id),
            )
        )
        return CardOut(
            customer=customer,
            addresses=addresses,
            tags=[
                TagOut(**{k: t[k] for k in TagOut.model_fields})
                for t in await tags_of(session, customer_id)
            ],
            orders=OrderHistoryOut(
                count=len(live),
                value=sum((o["total"] for o in live), Decimal(0)),
                cancelled=len(orders) - len(live),
                last_orders=[
                    OrderSummaryOut(**{k: o[k] for k in OrderSummaryOut.model_fields})
                    for o in orders[:CARD_LAST_ORDERS]
                ],
            ),
            complaints=[
                ComplaintOut(**{k: c._mapping[k] for k in ComplaintOut.model_fields})
                for c in complaint_rows
            ],
            open_merge_proposals=[
                MergeProposalOut(
                    id=p.id,
                    candidate_id=p.candidate_id if p.customer_id == customer_id else p.customer_id,
                    name_score=p.name_score,
                    address_score=p.address_score,
                )
                for p in proposals
            ],
        )


async def _require_customer(session: Any, customer_id: uuid.UUID) -> None:
    exists = (
        await session.execute(select(func.count()).where(customers.c.id == customer_id))
    ).scalar_one()
    if not exists:
        raise Problem(404, f"unknown customer {customer_id}")


@router.post(
    "/customers/{customer_id}/complaints",
    response_model=ComplaintOut,
    status_code=201,
    tags=["customers"],
    dependencies=PII_IN_JWT_MODE,
)
async def add_complaint(
    customer_id: uuid.UUID, body: ComplaintIn, runtime: RuntimeDep, actor: RequestActor
) -> ComplaintOut:
    """Record a complaint about a customer (audited with its category and order, not
    its text); the tag rules then look at the customer again."""
    async with runtime.uow() as uow:
        await _require_customer(uow.session, customer_id)
        row = (
            await uow.session.execute(
                complaints.insert()
                .values(
                    id=uuid.uuid4(),
                    customer_id=customer_id,
                    order_id=body.order_id,
                    category=body.category,
                    text=body.text,
                    created_at=func.now(),
                )
                .returning(*complaints.c)
            )
        ).one()
        await record_audit(
            uow.session,
            actor=actor,
            action="create",
            entity="complaint",
            entity_id=row.id,
            before=None,
            after={
                "customer_id": customer_id,
                "order_id": body.order_id,
                "category": body.category,
            },
        )
        await OrderTotalsStore(uow.session).count_complaint(customer_id)
        await emit_updated(uow, customer_id, ["complaints"])
        await apply_tag_rules(uow, customer_id)
        await uow.commit()
    return ComplaintOut(**{k: row._mapping[k] for k in ComplaintOut.model_fields})


@router.post("/customers/{customer_id}/tags", response_model=list[TagOut], tags=["tags"])
async def operator_tags(
    customer_id: uuid.UUID, body: TagsIn, runtime: RuntimeDep, operator: CustomersOperator
) -> list[TagOut]:
    """Add or remove tags by hand (source ``operator``; rules never remove those)."""
    async with runtime.uow() as uow:
        await _require_customer(uow.session, customer_id)
        await set_operator_tags(uow, customer_id, body.add, body.remove, operator)
        tags = await tags_of(uow.session, customer_id)
        await uow.commit()
    return [TagOut(**{k: t[k] for k in TagOut.model_fields}) for t in tags]


@router.get("/tag-rules", response_model=TagRulesIn, tags=["tags"])
async def get_tag_rules(runtime: RuntimeDep) -> TagRulesIn:
    async with runtime.uow() as uow:
        rows = await uow.session.execute(select(tag_rules).order_by(tag_rules.c.position))
        return TagRulesIn(
            rules=[TagRuleIn(name=r.name, tag=r.tag, expression=r.expression) for r in rows]
        )


@router.put(
    "/tag-rules",
    response_model=TagRulesIn,
    tags=["tags"],
    responses={422: {"description": "a rule does not compile (with its position)"}},
)
async def put_tag_rules(
    body: TagRulesIn, runtime: RuntimeDep, operator: CustomersOperator
) -> TagRulesIn:
    """Replace the tag rules. Each expression is checked (syntax and known facts) before
    any is stored; rules apply to each customer at its next order, complaint or merge."""
    names = [r.name for r in body.rules]
    if len(set(names)) != len(names):
        raise Problem(422, "rule names must be unique", field="rules")
    for i, rule in enumerate(body.rules):
        try:
            compile_rule(rule.expression)
        except RuleError as exc:
            raise Problem(
                422,
                f"rule {rule.name!r}: {exc.message}",
                field=f"rules.{i}.expression",
                position=exc.position,
            ) from None
    async with runtime.uow() as uow:
        session = uow.session
        current = [
            {"name": r.name, "tag": r.tag, "expression": r.expression}
            for r in await session.execute(
                select(tag_rules).order_by(tag_rules.c.position).with_for_update()
            )
        ]
        wanted = [r.model_dump() for r in body.rules]
        if current != wanted:
            await session.execute(tag_rules.delete())
            for i, rule in enumerate(body.rules):
                await session.execute(
                    tag_rules.insert().values(
                        name=rule.name, tag=rule.tag, expression=rule.expression, position=i
                    )
                )
            await record_audit(
                session,
                actor=operator,
                action="put",
                entity="tag_rules",
                entity_id="all",
                before={"rules": current},
                after={"rules": wanted},
            )
        await uow.commit()
    return body
