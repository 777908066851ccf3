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
