"""Which failures are worth retrying forever and which are the message's fault."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

#: SQLSTATEs of conflicts that succeed when retried (serialization failure, deadlock).
_RETRYABLE_SQLSTATES = {"40001", "40P01"}


def is_transient(exc: BaseException) -> bool:
    """True for infrastructure failures: the database or network was unavailable.

    Such a failure says nothing about the message, so the message is retried until the
    infrastructure is back instead of being dead-lettered.
    """
    if isinstance(exc, (OperationalError, InterfaceError, OSError, asyncio.TimeoutError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if sqlstate in _RETRYABLE_SQLSTATES:
            return True
        cause = exc.orig.__cause__ if exc.orig is not None else None
        if cause is not None and type(cause).__name__ in {
            "ConnectionDoesNotExistError",
            "InterfaceError",
            "CannotConnectNowError",
            "AdminShutdownError",
            "TooManyConnectionsError",
            "SerializationError",
            "DeadlockDetectedError",
        }:
            return True
    return False


#: The default bound of one serialized event (the envelope's JSON). Kafka refuses
#: messages over its ``message.max.bytes`` (about 1 MB by default) and the local broker
#: enforces no limit at all, so ours is checked where events are built and again before
#: they are sent.
MAX_EVENT_BYTES = 900_000


class EventTooLarge(ValueError):
    """An event whose serialized envelope is over the size limit: it could never be
    published, so it is refused where it is built."""

    def __init__(self, event_type: str, size: int, limit: int) -> None:
        super().__init__(
            f"{event_type} is {size} bytes serialized, over the limit of {limit} bytes"
        )
        self.event_type = event_type
        self.size = size
        self.limit = limit


def is_unpublishable(exc: BaseException) -> bool:
    """True when the broker (or the client) refuses a message for good: sending it again
    cannot succeed, so the relay parks it instead of stopping on it. A broker that is
    down or slow (timeouts, lost connections, leader changes) is never a reason."""
    from aiokafka import errors as kafka

    permanent = (
        kafka.MessageSizeTooLargeError,
        kafka.RecordTooLargeError,
        kafka.InvalidTopicError,
        kafka.TopicAuthorizationFailedError,
        kafka.CorruptRecordException,
        EventTooLarge,
        UnicodeError,
        TypeError,
    )
    return isinstance(exc, permanent)


def is_broker_unavailable(exc: BaseException) -> bool:
    """True when a send failed because the broker (or the way to it) is away or busy: a
    lost connection, a timeout, a leader election, the producer shutting down. Such a
    failure says nothing about the event, so the relay sends it again, however long it
    lasts, and never counts it towards parking."""
    from aiokafka import errors as kafka

    if is_transient(exc):
        return True
    if isinstance(exc, (kafka.KafkaTimeoutError, kafka.ProducerClosed)):
        return True
    return isinstance(exc, kafka.KafkaError) and bool(exc.retriable)
