"""Bodies of the exception queue's bulk resolution."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from oms_contracts.events import ExceptionCause

#: Exceptions resolved by one request at most; the caller repeats while some remain.
MAX_BATCH = 1000


class BulkResolveIn(BaseModel):
    """Resolve every open exception of one cause (of one channel, if given)."""

    model_config = ConfigDict(extra="forbid")

    cause: ExceptionCause
    action: Literal["retry", "release", "cancel"]
    channel: str | None = Field(default=None, min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=500)
    #: How many of them this request resolves (oldest first).
    limit: int = Field(default=500, ge=1, le=MAX_BATCH)


class BulkRefusal(BaseModel):
    exception_id: uuid.UUID
    order_id: uuid.UUID
    order_state: str | None
    detail: str


class BulkResolveOut(BaseModel):
    cause: str
    action: str
    channel: str | None
    #: The exceptions this request resolved, oldest first.
    resolved: list[uuid.UUID]
    #: Those the action does not fit (the order's state does not allow it): left open.
    refused: list[BulkRefusal]
    #: Open exceptions of the cause (and channel) left after this request, refused ones
    #: included; more than the refused ones: call again.
    remaining: int
