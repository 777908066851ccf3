"""The unit of work: one database transaction holding a state change and its events.

Only the unit of work commits. Handlers and repositories use ``uow.session`` and call
``uow.emit(event)``; the event becomes an outbox row in the same transaction, so a state
change is never published without being stored, nor stored without being published.

Emitted events are buffered and written as one multi-row outbox insert just before the
commit (one round trip for a batch of hundreds of events instead of one each), and a
batch's inbox rows are recorded in one statement too (:meth:`UnitOfWork.mark_processed_many`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self, TypeVar, cast

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from oms_contracts import Envelope, Event, check_owner, make_envelope, topic_for
from oms_messaging.context import correlation_id_var
from oms_messaging.errors import MAX_EVENT_BYTES, EventTooLarge
from oms_messaging.tracing import current_trace_headers

#: Every buffered event of a transaction in one statement: the same text whatever the
#: count, so the database plans it once per connection.
T = TypeVar("T")

_OUTBOX_INSERT = text(
    "INSERT INTO outbox (event_id, topic, key, event_type, payload, headers)"
    " SELECT e, t, k, y, p, h::jsonb FROM unnest("
    " CAST(:event_ids AS uuid[]), CAST(:topics AS text[]), CAST(:keys AS text[]),"
    " CAST(:types AS text[]), CAST(:payloads AS text[]), CAST(:headers AS text[])"
    ") AS x(e, t, k, y, p, h)"
)
_INBOX_INSERT = text(
    "INSERT INTO inbox (consumer, event_id, event_type)"
    " SELECT :consumer, e, y FROM unnest(CAST(:event_ids AS uuid[]), CAST(:types AS text[]))"
    " AS x(e, y) ON CONFLICT DO NOTHING RETURNING event_id"
)


class UnitOfWork:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        producer: str,
        causation: Envelope | None = None,
        on_commit: Callable[[Sequence[Envelope]], None] | None = None,
        max_event_bytes: int = MAX_EVENT_BYTES,
    ) -> None:
        self._session_factory = session_factory
        self._max_event_bytes = max_event_bytes
        self._producer = producer
        self._causation = causation
        self._on_commit = on_commit
        self._emitted: list[Envelope] = []
        #: event id -> its outbox row, written at commit (insertion order kept).
        self._pending: dict[uuid.UUID, tuple[str, str, str, str, str]] = {}
        self._snapshots: dict[str, uuid.UUID] = {}
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._session: AsyncSession | None = None
        self._cache: dict[object, object] = {}
        self._primed: dict[object, object] = {}

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside 'async with'")
        return self._session

    @property
    def emitted(self) -> list[Envelope]:
        """Events written to the outbox in this unit of work (for tests and logs)."""
        return list(self._emitted)

    async def __aenter__(self) -> Self:
        self._session = self._session_factory()
        self._emitted = []
        self._pending = {}
        self._snapshots = {}
        self._before_commit = []
        self._after_commit = []
        self._cache = {}
        self._primed = {}
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Anything not committed explicitly is rolled back: a half-done change never lands.
        await self.session.rollback()
        await self.session.close()
        self._session = None

    async def cached(self, key: object, load: Callable[[], Awaitable[T]]) -> T:
        """``load()`` once per transaction for ``key``: a read that many events of a batch
        need (the active workflow rules, the warehouses) costs one statement per batch.
        Only for reads this transaction does not change after loading them."""
        if key not in self._cache:
            self._cache[key] = await load()
        return cast(T, self._cache[key])

    def prime(self, key: object, value: object) -> None:
        """Hand one read, done for a whole batch, to the one use that asks for it next
        (:meth:`primed_or`): read once for hundreds of orders, used once each."""
        self._primed[key] = value

    async def primed_or(self, key: object, load: Callable[[], Awaitable[T]]) -> T:
        """The value primed for ``key`` (taken: a second ask reads again), else ``load()``."""
        if key in self._primed:
            return cast(T, self._primed.pop(key))
        return await load()

    def drop_primed(self) -> None:
        """Forget what was primed and not asked for (a batch is done with it)."""
        self._primed = {}

    def forget(self, key: object) -> None:
        """Drop ``key`` from the transaction's cache: its rows have just changed."""
        self._cache.pop(key, None)

    def caused_by(self, envelope: Envelope | None) -> None:
        """Events emitted from now on were caused by ``envelope``.

        A consumer applying several messages in one transaction switches the cause before
        each handler, so every emitted event still names the message that caused it.
        """
        self._causation = envelope

    async def emit(self, event: Event, *, snapshot_of: str | None = None) -> Envelope:
        """Write ``event`` to the outbox in this transaction.

        ``snapshot_of`` marks a state snapshot (a stock level, say): when this transaction
        already emitted a snapshot of the same thing, the older one is dropped, so a
        transaction applying fifty reservations of one SKU publishes its level once.

        Raises ``NotTheOwner`` when this service does not own the event type: each event
        type has one producer (``oms_contracts.owners``), checked before anything is written;
        and ``EventTooLarge`` when the serialized event is over the size limit (it could
        never be published), before anything is written either.
        """
        check_owner(event.event_type, event.owner, self._producer)
        envelope = make_envelope(
            event,
            producer=self._producer,
            correlation_id=correlation_id_var.get(),
            causation=self._causation,
        )
        payload = envelope.model_dump_json()
        size = len(payload.encode())
        if size > self._max_event_bytes:
            raise EventTooLarge(envelope.event_type, size, self._max_event_bytes)
        if snapshot_of is not None:
            older = self._snapshots.pop(snapshot_of, None)
            if older is not None:
                self._pending.pop(older, None)
                self._emitted = [e for e in self._emitted if e.event_id != older]
        self._pending[envelope.event_id] = (
            topic_for(envelope.event_type).value,
            envelope.key,
            envelope.event_type,
            payload,
            json.dumps(current_trace_headers()),
        )
        self._emitted.append(envelope)
        if snapshot_of is not None:
            self._snapshots[snapshot_of] = envelope.event_id
        return envelope

    async def mark_processed(self, consumer: str, event_id: uuid.UUID, event_type: str) -> bool:
        """Record ``event_id`` in the inbox; False if this consumer has already applied it."""
        return bool(await self.mark_processed_many(consumer, [(event_id, event_type)]))

    async def mark_processed_many(
        self, consumer: str, events: Sequence[tuple[uuid.UUID, str]]
    ) -> set[uuid.UUID]:
        """Record a batch's event ids in the inbox in one statement; the ids this consumer
        had not applied before (an id twice in the batch is returned once: the caller
        applies its first occurrence only)."""
        if not events:
            return set()
        result = await self.session.execute(
            _INBOX_INSERT,
            {
                "consumer": consumer,
                "event_ids": [event_id for event_id, _ in events],
                "types": [event_type for _, event_type in events],
            },
        )
        return {row[0] for row in result}

    async def _write_outbox(self) -> None:
        """The transaction's events as one multi-row insert, in the order they were emitted."""
        if not self._pending:
            return
        rows, self._pending = self._pending, {}
        columns = list(zip(*rows.values(), strict=True))
        await self.session.execute(
            _OUTBOX_INSERT,
            {
                "event_ids": list(rows),
                "topics": list(columns[0]),
                "keys": list(columns[1]),
                "types": list(columns[2]),
                "payloads": list(columns[3]),
                "headers": list(columns[4]),
            },
        )

    def before_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await ``callback`` just before this transaction commits, inside it.

        For writes buffered while many messages are applied (one multi-row statement
        instead of one per message): they land in the same transaction as the inbox rows,
        or not at all. Dropped on rollback, like :meth:`after_commit`.
        """
        self._before_commit.append(callback)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this transaction has committed (never if it rolls back).

        For effects outside the database that must only follow a durable change, such as
        a business counter: a batch that is rolled back and replayed counts once.
        """
        self._after_commit.append(callback)

    async def flush(self) -> None:
        """Write the buffered writes (:meth:`before_commit`) now, for a read of them later
        in this transaction (an API answer showing what it just changed)."""
        while self._before_commit:  # a callback may register another
            await self._before_commit.pop(0)()

    async def commit(self) -> None:
        await self.flush()
        await self._write_outbox()
        await self.session.commit()
        # What was cached or coalesced belonged to the transaction that just ended.
        self._snapshots, self._cache, self._primed = {}, {}, {}
        if self._emitted and self._on_commit is not None:
            self._on_commit(self._emitted)
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    async def rollback(self) -> None:
        await self.session.rollback()
        self._emitted = []
        self._pending = {}
        self._snapshots = {}
        self._before_commit = []
        self._after_commit = []
        self._cache = {}
        self._primed = {}


UnitOfWorkFactory = Callable[..., UnitOfWork]
