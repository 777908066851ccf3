"""Fixtures shared by every test in the repository.

Tests that cross a process boundary use a real PostgreSQL (``DATABASE_URL``, default
127.0.0.1:5432) on throwaway databases and a real Kafka-protocol broker: a private tansu
started for the test session on a free port, so tests never collide with `make run`.
Set ``KAFKA_BOOTSTRAP_SERVERS`` to run them against another broker (e.g. Apache Kafka).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
async def kafka_bootstrap(artifacts_dir: Path) -> AsyncIterator[str]:
    """Bootstrap servers of a broker private to this test session."""
    external = os.environ.get("OMS_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    from oms_devstack.broker import Broker
    from oms_devstack.ports import free_port

    broker = Broker(free_port(), artifacts_dir / "test-broker.log")
    await broker.start()
    try:
        yield broker.bootstrap
    finally:
        await broker.stop()
