"""The envelope every event travels in, and the base class of every event payload.

The envelope carries what any consumer needs without knowing the payload: identity
(for the inbox), type and version (for parsing and the DLQ), correlation and
causation (to follow one order across services) and the partition key.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    """Base of every event payload.

    Subclasses declare ``event_type``, ``schema_version``, ``key_field`` (the payload
    field whose value is the partition key, the aggregate id, so that all events of one
    aggregate land on one partition, in order) and ``owner``: the one service that
    produces the event type. Two producers of one fact disagree sooner or later (a paid
    order that its owner never heard of), so the unit of work refuses to write an event
    another service owns (see ``oms_contracts.owners``).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    key_field: ClassVar[str]
    owner: ClassVar[str]

    def partition_key(self) -> str:
        return str(getattr(self, self.key_field))


class Envelope(BaseModel):
    """Metadata around one event; ``payload`` is the event's JSON object."""

    model_config = ConfigDict(extra="ignore")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    schema_version: int = Field(ge=1)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    correlation_id: str
    causation_id: str | None = None
    key: str
    payload: dict[str, Any]


def make_envelope(
    event: Event,
    *,
    producer: str,
    correlation_id: str | None = None,
    causation: Envelope | None = None,
) -> Envelope:
    """Wrap ``event`` for publishing.

    When the event is caused by another one, it inherits that event's correlation id and
    names it as its cause, so one order's whole path can be followed.
    """
    if causation is not None:
        correlation_id = correlation_id or causation.correlation_id
        causation_id: str | None = str(causation.event_id)
    else:
        causation_id = None
    return Envelope(
        event_type=event.event_type,
        schema_version=event.schema_version,
        producer=producer,
        correlation_id=correlation_id or str(uuid.uuid4()),
        causation_id=causation_id,
        key=event.partition_key(),
        payload=event.model_dump(mode="json"),
    )
