"""Fixtures shared by the services' own tests.

``event_broker``: a Kafka-protocol broker for the session's service tests, on which each
test module runs its service's production consumers (``oms_servicekit.testing``'s
``EventDriver``). Not the session broker of the end-to-end stack: those services read the
same topics, and a test's events must reach only the consumers it drives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from oms_devstack.broker import Broker
from oms_devstack.ports import free_port


@pytest.fixture(scope="session")
async def event_broker(
    artifacts_dir: Path, worker_file: Callable[[str], str]
) -> AsyncIterator[str]:
    """Bootstrap servers of a broker private to the session's service tests."""
    broker = Broker(free_port(), artifacts_dir / worker_file("service-tests-broker.log"))
    await broker.start()
    try:
        yield broker.bootstrap
    finally:
        await broker.stop()
