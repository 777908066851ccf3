"""Customer master-data events, keyed by customer id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from oms_contracts.envelope import Event
from oms_contracts.owners import CUSTOMER_SVC


class CustomerUpdated(Event):
    """A customer was created or changed; ``changed_fields`` names what changed."""

    event_type: ClassVar[str] = "CustomerUpdated"
    owner: ClassVar[str] = CUSTOMER_SVC
    key_field: ClassVar[str] = "customer_id"

    customer_id: uuid.UUID
    changed_fields: list[str]
    delivery_requirements: list[str] = []
    tags: list[str] = []
    updated_at: datetime


class CustomerResolved(Event):
    """An order's channel identity was resolved to the customer id it belongs to."""

    event_type: ClassVar[str] = "CustomerResolved"
    owner: ClassVar[str] = CUSTOMER_SVC
    key_field: ClassVar[str] = "customer_id"

    customer_id: uuid.UUID
    order_id: uuid.UUID
    channel: str
    platform_user_id: str
    new_customer: bool
    resolved_at: datetime


class CustomerMerged(Event):
    """``merged_id`` now belongs to ``surviving_id``; references should follow."""

    event_type: ClassVar[str] = "CustomerMerged"
    owner: ClassVar[str] = CUSTOMER_SVC
    key_field: ClassVar[str] = "surviving_id"

    surviving_id: uuid.UUID
    merged_id: uuid.UUID
    actor: str
    merged_at: datetime
