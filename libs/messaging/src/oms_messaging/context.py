"""The correlation id of the work in progress (an HTTP request or a consumed event)."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)


@contextmanager
def correlated(correlation_id: str | None) -> Iterator[None]:
    """Work done inside the block carries ``correlation_id``: for one task doing the work
    of many requests (a group commit), around each request's part."""
    token = correlation_id_var.set(correlation_id)
    try:
        yield
    finally:
        correlation_id_var.reset(token)
