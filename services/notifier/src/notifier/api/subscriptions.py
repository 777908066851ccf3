"""``/subscriptions``: who gets which alerts where. Changes are operator actions (the
``X-Operator`` header), audited; a webhook's signing secret is shown once, at creation."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from notifier.adapters.subscriptions import SubscriptionRepository
from notifier.api.roles import SubscriptionsAdmin
from notifier.api.subscription_schemas import (
    BoardTarget,
    EmailTarget,
    SubscriptionCreated,
    SubscriptionFilter,
    SubscriptionIn,
    SubscriptionOut,
    WebhookTarget,
)
from notifier.domain.subscriptions import (
    TargetPolicy,
    TargetRefused,
    check_email,
    check_webhook_url,
)
from oms_servicekit.auth import role_in_jwt_mode
from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem

router = APIRouter(tags=["subscriptions"])
#: Subscriptions name outside addresses: reading them needs ``channels:admin`` in jwt mode.
ADMIN_READ = [Depends(role_in_jwt_mode("channels:admin"))]


async def target_policy(request: Request) -> TargetPolicy:
    """The service's webhook policy (set by the composition root), else the default."""
    policy = getattr(request.app.state, "target_policy", None)
    return policy if isinstance(policy, TargetPolicy) else TargetPolicy()


TargetPolicyDep = Annotated[TargetPolicy, Depends(target_policy)]
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no X-Operator header"},
    404: {"description": "no such subscription"},
    422: {"description": "invalid body (problem+json naming the field)"},
}


def to_out(row: dict[str, Any]) -> SubscriptionOut:
    target: WebhookTarget | EmailTarget | BoardTarget
    if row["target_type"] == "webhook":
        target = WebhookTarget(type="webhook", url=row["target"])
    elif row["target_type"] == "email":
        target = EmailTarget(type="email", address=row["target"])
    else:
        target = BoardTarget(type="board")
    return SubscriptionOut(
        id=row["id"],
        name=row["name"],
        event_types=list(row["event_types"]),
        filter=SubscriptionFilter(channel=row["channel"], warehouse=row["warehouse"]),
        target=target,
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


@router.post(
    "/subscriptions", status_code=201, response_model=SubscriptionCreated, responses=_PROBLEMS
)
async def create_subscription(
    body: SubscriptionIn, runtime: RuntimeDep, operator: SubscriptionsAdmin, policy: TargetPolicyDep
) -> SubscriptionCreated:
    """Subscribe a target to event types (optionally one channel/warehouse). For a
    webhook the answer carries ``secret``, the HMAC-SHA256 key of ``X-OMS-Signature``:
    keep it, it is never shown again."""
    target = body.target
    secret: str | None = None
    value: str | None = None
    try:
        if isinstance(target, WebhookTarget):
            value = check_webhook_url(target.url, policy)
            secret = secrets.token_urlsafe(32)
        elif isinstance(target, EmailTarget):
            value = check_email(target.address)
    except TargetRefused as exc:
        field = "target.url" if isinstance(target, WebhookTarget) else "target.address"
        raise Problem(422, str(exc), field=field) from exc
    values = {
        "id": uuid.uuid4(),
        "name": body.name,
        "event_types": body.event_types,
        "channel": body.filter.channel,
        "warehouse": body.filter.warehouse,
        "target_type": target.type,
        "target": value,
        "secret": secret,
    }
    async with runtime.uow() as uow:
        row = await SubscriptionRepository(uow.session).create(values, operator=operator)
        await uow.commit()
    return SubscriptionCreated(**to_out(row).model_dump(), secret=secret)


@router.get("/subscriptions", response_model=list[SubscriptionOut], dependencies=ADMIN_READ)
async def list_subscriptions(runtime: RuntimeDep) -> list[SubscriptionOut]:
    """Active subscriptions, oldest first (secrets are never shown)."""
    async with runtime.uow() as uow:
        rows = await SubscriptionRepository(uow.session).active()
    return [to_out(r) for r in rows]


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    responses=_PROBLEMS,
    dependencies=ADMIN_READ,
)
async def get_subscription(subscription_id: uuid.UUID, runtime: RuntimeDep) -> SubscriptionOut:
    async with runtime.uow() as uow:
        row = await SubscriptionRepository(uow.session).get_active(subscription_id)
    if row is None:
        raise Problem(404, "no such subscription", field="subscription_id")
    return to_out(row)


@router.delete("/subscriptions/{subscription_id}", status_code=204, responses=_PROBLEMS)
async def delete_subscription(
    subscription_id: uuid.UUID, runtime: RuntimeDep, operator: SubscriptionsAdmin
) -> Response:
    """Stop delivering to it; deliveries not yet sent are cancelled."""
    async with runtime.uow() as uow:
        deleted = await SubscriptionRepository(uow.session).delete(
            subscription_id, operator=operator, at=datetime.now(UTC)
        )
        await uow.commit()
    if not deleted:
        raise Problem(404, "no such subscription", field="subscription_id")
    return Response(status_code=204)
