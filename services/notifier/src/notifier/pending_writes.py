"""The board changes notifier makes for the events, gathered per transaction and
flushed once.

Notifier consumes every event of every topic (each one is logged as it is admitted, see
``EventLogInbox``), and most of them change the board. The consumer applies a chunk of
messages in one unit of work, calling the handlers once per message; written one by
one, the board rows would cost a few statements per event. Handlers add their changes
here instead, and the unit of work's ``before_commit`` hook writes the whole
transaction's worth in a few multi-row statements, inside the same transaction as the
event-log rows: nothing is lost (a rolled back transaction drops them with the log rows,
so the replay writes them again) and nothing is applied twice (the log dedupes).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import SessionTransaction

from notifier.adapters.board import BoardProjection
from notifier.domain.board_changes import BoardChanges
from oms_messaging import UnitOfWork


@dataclass
class PendingWrites:
    """One transaction's board changes, not yet written."""

    transaction: SessionTransaction
    board: BoardChanges = field(default_factory=BoardChanges)

    async def flush(self, session: AsyncSession) -> None:
        if self.board:
            await BoardProjection(session).apply(self.board)


_pending: weakref.WeakKeyDictionary[UnitOfWork, PendingWrites] = weakref.WeakKeyDictionary()


def pending_writes(uow: UnitOfWork) -> PendingWrites:
    """The writes pending in ``uow``'s current transaction, flushed before it commits.

    Tied to the database transaction, not only to the unit of work: after a rollback
    (which drops the flush with everything else) or a commit, the next transaction
    starts afresh rather than adding to writes that will never be flushed.
    """
    transaction = current_transaction(uow.session)
    pending = _pending.get(uow)
    if pending is None or pending.transaction is not transaction:
        pending = PendingWrites(transaction)
        _pending[uow] = pending
        uow.before_commit(lambda: _flush(uow, pending))
    return pending


async def _flush(uow: UnitOfWork, pending: PendingWrites) -> None:
    if _pending.get(uow) is pending:
        del _pending[uow]
    await pending.flush(uow.session)


def current_transaction(session: AsyncSession) -> SessionTransaction:
    """The session's database transaction, begun now if no statement has begun it."""
    sync = session.sync_session
    transaction = sync.get_transaction()
    return transaction if transaction is not None else sync.begin()
