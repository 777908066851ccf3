"""The stack reaches a PostgreSQL on this host through its Unix socket (cheaper round trips
than loopback TCP), and only when the socket leads to the very server the URL names."""

from __future__ import annotations

import os

import asyncpg

from oms_devstack.dburl import with_database
from oms_devstack.postgres import prefer_local_socket

LOCAL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")


async def test_a_local_server_is_reached_through_its_socket() -> None:
    url = await prefer_local_socket(LOCAL)
    if url == LOCAL:  # a server without a socket on this host: nothing to prefer
        return
    assert url == "postgresql://postgres@?host=/var/run/postgresql&port=5432" or "host=/" in url
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        # inet_server_addr() is NULL for a Unix-socket connection
        assert await conn.fetchval("SELECT inet_server_addr()") is None
    finally:
        await conn.close()


async def test_remote_or_explicit_urls_are_left_alone() -> None:
    assert await prefer_local_socket("postgresql://u@db.internal:5432") == (
        "postgresql://u@db.internal:5432"
    )
    explicit = "postgresql://postgres@127.0.0.1:5432?host=/somewhere"
    assert await prefer_local_socket(explicit) == explicit
    # nothing listens on this port: the URL comes back unchanged, no error
    dead = "postgresql://postgres@127.0.0.1:1"
    assert await prefer_local_socket(dead) == dead
