"""The channel cache: bounded staleness, no stale store after an invalidation, and the
change notifications that evict an entry on every replica (on the real database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy import text

from channel_gateway.adapters.channel_cache import ChannelCache
from channel_gateway.adapters.channel_events import APPLICATION_NAME, ChannelChangeListener
from channel_gateway.adapters.repository import Channel, ChannelConfig, GatewayRepository
from channel_gateway.domain.config import ChannelSettings
from oms_servicekit.testing import MigratedDatabase


class FakeRepo:
    """Counts reads; ``gate`` holds a read open until the test releases it."""

    def __init__(self) -> None:
        self.secret = "one"
        self.reads = 0
        self.gate: asyncio.Event | None = None

    async def channel_config(self, name: str) -> ChannelConfig | None:
        self.reads += 1
        secret = self.secret
        if self.gate is not None:
            await self.gate.wait()
        if name == "nope":
            return None
        return ChannelConfig(Channel(name, "generic", secret, ChannelSettings()), {})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def secret_of(cache: ChannelCache, repo: FakeRepo, name: str = "web") -> str | None:
    config = await cache.get(repo, name)  # type: ignore[arg-type]
    return config.channel.secret if config else None


async def test_an_entry_lives_at_most_the_ttl() -> None:
    clock, repo = Clock(), FakeRepo()
    cache = ChannelCache(5.0, clock=clock)
    assert await secret_of(cache, repo) == "one"
    repo.secret = "two"
    clock.now += 4.9
    assert await secret_of(cache, repo) == "one" and repo.reads == 1
    clock.now += 0.2
    assert await secret_of(cache, repo) == "two" and repo.reads == 2


async def test_unknown_channels_and_a_zero_ttl_are_never_cached() -> None:
    repo = FakeRepo()
    cache = ChannelCache(5.0)
    assert await secret_of(cache, repo, "nope") is None
    assert await secret_of(cache, repo, "nope") is None
    assert repo.reads == 2 and "nope" not in cache
    uncached = ChannelCache(0)
    await secret_of(uncached, repo)
    await secret_of(uncached, repo)
    assert repo.reads == 4


@pytest.mark.parametrize("forget", [lambda c: c.invalidate("web"), lambda c: c.clear()])
async def test_a_read_in_flight_during_an_invalidation_is_not_stored(
    forget: Callable[[ChannelCache], None],
) -> None:
    repo = FakeRepo()
    cache = ChannelCache(60.0)
    repo.gate = asyncio.Event()
    reading = asyncio.create_task(secret_of(cache, repo))
    await asyncio.sleep(0)  # the read has the old secret...
    repo.secret = "two"
    forget(cache)  # ... when the change is announced
    repo.gate.set()
    assert await reading == "one"  # its caller was already under way
    repo.gate = None
    assert await secret_of(cache, repo) == "two"


# -- change notifications ----------------------------------------------------------------


@pytest.fixture
async def listening(
    gdb: MigratedDatabase,
) -> AsyncIterator[tuple[ChannelCache, ChannelChangeListener]]:
    cache = ChannelCache(3600.0)  # only a notification can evict an entry in these tests
    dsn = gdb.settings.server_dsn(gdb.settings.db_name)
    listener = ChannelChangeListener(dsn, cache, ping_s=0.2)
    await listener.start()
    await asyncio.wait_for(listener.listening.wait(), timeout=10)
    try:
        yield cache, listener
    finally:
        await listener.stop()


async def warm(gdb: MigratedDatabase, cache: ChannelCache, *names: str) -> None:
    """Read ``names`` into the cache (again while the notification of their own creation
    comes in: a read crossing an invalidation is not stored). The pause first lets the
    notifications of earlier changes arrive, so none evicts the entry afterwards."""
    await asyncio.sleep(0.3)
    async with asyncio.timeout(5):
        while not all(name in cache for name in names):
            async with gdb.uow() as uow:
                repo = GatewayRepository(uow.session)
                for name in names:
                    assert await cache.get(repo, name) is not None
            await asyncio.sleep(0.05)


async def evicted(cache: ChannelCache, name: str, timeout: float = 5.0) -> bool:
    async with asyncio.timeout(timeout):
        while name in cache:
            await asyncio.sleep(0.02)
    return True


async def test_a_change_committed_anywhere_evicts_the_entry_here(
    gdb: MigratedDatabase, listening: tuple[ChannelCache, ChannelChangeListener]
) -> None:
    cache, _ = listening
    async with gdb.uow() as uow:
        repo = GatewayRepository(uow.session)
        for name in ("web", "shop"):
            assert await repo.add_channel(Channel(name, "generic", "s" * 12))
        await uow.commit()
    await warm(gdb, cache, "web", "shop")

    # Another replica rotates a secret: nothing is announced before it commits.
    async with gdb.uow() as uow:
        await GatewayRepository(uow.session).update_channel("web", ChannelSettings(), "n" * 12)
        await asyncio.sleep(0.3)
        assert "web" in cache
        await uow.commit()
    assert await evicted(cache, "web")
    assert "shop" in cache

    await warm(gdb, cache, "web")
    async with gdb.uow() as uow:
        await GatewayRepository(uow.session).replace_sku_map("shop", {"A": "SKU-1"})
        await uow.commit()
    assert await evicted(cache, "shop")
    assert "web" in cache

    async with gdb.session_factory() as session:  # a change made by hand counts too
        await session.execute(text("DELETE FROM channels WHERE name = 'web'"))
        await session.commit()
    assert await evicted(cache, "web")


async def test_a_lost_listener_connection_clears_the_cache_and_listens_again(
    gdb: MigratedDatabase, listening: tuple[ChannelCache, ChannelChangeListener]
) -> None:
    cache, listener = listening
    async with gdb.uow() as uow:
        assert await GatewayRepository(uow.session).add_channel(Channel("web", "generic", "s" * 12))
        await uow.commit()
    await warm(gdb, cache, "web")

    admin = await asyncpg.connect(gdb.settings.server_dsn("postgres"))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND application_name = $2",
            gdb.settings.db_name,
            APPLICATION_NAME,
        )
    finally:
        await admin.close()
    assert killed == 1
    # Whatever changed while nobody listened is unknown: the cache starts over.
    assert await evicted(cache, "web")
    await asyncio.wait_for(listener.listening.wait(), timeout=10)

    await warm(gdb, cache, "web")
    async with gdb.uow() as uow:
        await GatewayRepository(uow.session).update_channel("web", ChannelSettings(), "n" * 12)
        await uow.commit()
    assert await evicted(cache, "web")
