"""Errors the launcher raises on purpose.

Every one of them carries a message meant for a human at a terminal: the CLI prints it as is
instead of a traceback, so the first line must say what went wrong and what to do about it.
"""

from __future__ import annotations


class DevstackError(RuntimeError):
    """A failure the launcher understands and can explain in plain words."""


class PortInUseError(DevstackError):
    """A port the stack wants is already taken (most often: a stack is already running)."""


class PostgresUnavailableError(DevstackError):
    """No PostgreSQL answers and a private one could not be started either."""


class BrokerStartError(DevstackError):
    """The tansu broker could not be located or did not start listening."""


class ServiceStartError(DevstackError):
    """A service exited early or never became ready; the message ends with its log tail."""


class SeedError(DevstackError):
    """A demo-seed request got an answer that is neither success nor "already there"."""
