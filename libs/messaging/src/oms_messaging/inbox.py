"""Where a consumer records the events it has applied: what makes a redelivery a no-op.

The runner admits every event through an :class:`Inbox` inside the transaction that
applies it, and applies only the ones admitted for the first time. The default is the
``inbox`` table every service has (consumer name and event id). A service whose own
tables already hold one row per event id can be its own inbox instead, and save a row
per event: notifier's event log is one (``notifier.adapters.repository.EventLogInbox``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from oms_contracts import Envelope
from oms_messaging.unit_of_work import UnitOfWork


class Inbox(Protocol):
    async def admit(
        self, uow: UnitOfWork, consumer: str, envelopes: Sequence[Envelope]
    ) -> set[uuid.UUID]:
        """Record ``envelopes`` as applied by ``consumer``, in ``uow``'s transaction (a
        rollback forgets them); the ids not recorded before, each once however often it
        occurs in ``envelopes``."""
        ...


class InboxTable:
    """The ``inbox`` table: one row per consumer and event id."""

    async def admit(
        self, uow: UnitOfWork, consumer: str, envelopes: Sequence[Envelope]
    ) -> set[uuid.UUID]:
        return await uow.mark_processed_many(
            consumer, [(e.event_id, e.event_type) for e in envelopes]
        )


INBOX_TABLE = InboxTable()
