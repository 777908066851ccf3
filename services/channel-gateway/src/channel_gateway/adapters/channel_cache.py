"""An in-process cache of channel configuration (secret, settings, SKU map).

Every webhook needs its channel's secret and SKU map; reading them per request was two
SELECTs on the ack path for data that changes a few times a day. Entries are dropped
when a channel changes: by the route that changed it (at once, in this process), by the
change notification every replica listens to (``channel_events``), and in any case
after ``ttl_s``, the bound on staleness should a notification be lost.

Unknown channels are not cached, so a channel created on one replica is usable on every
replica at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from channel_gateway.adapters.repository import ChannelConfig, GatewayRepository


@dataclass(frozen=True)
class _Entry:
    config: ChannelConfig
    expires_at: float


class ChannelCache:
    """Channel configurations by name, each kept at most ``ttl_s`` (0 disables caching).

    A load that was in flight while an entry was invalidated may have read the old
    configuration, so it is returned to its caller but not stored: every invalidation
    bumps a generation, and a load stores its result only if the generation it started
    with is still current.
    """

    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._generation = 0

    async def get(self, repo: GatewayRepository, name: str) -> ChannelConfig | None:
        """The channel's configuration, from the cache or read through ``repo``."""
        entry = self._entries.get(name)
        if entry is not None and entry.expires_at > self._clock():
            return entry.config
        generation = self._generation
        config = await repo.channel_config(name)
        if config is None:
            self._entries.pop(name, None)
        elif self._ttl_s > 0 and generation == self._generation:
            self._entries[name] = _Entry(config, self._clock() + self._ttl_s)
        return config

    def invalidate(self, name: str) -> None:
        """Forget ``name`` (its configuration or SKU map changed)."""
        self._generation += 1
        self._entries.pop(name, None)

    def clear(self) -> None:
        """Forget everything (change notifications may have been missed)."""
        self._generation += 1
        self._entries.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._entries
