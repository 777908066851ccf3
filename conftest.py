"""Fixtures shared by every test in the repository.

Tests that cross a process boundary use a real PostgreSQL (``DATABASE_URL``, default
127.0.0.1:5432) on throwaway databases and a real Kafka-protocol broker: a private tansu
started for the test session on a free port, so tests never collide with `make run`.
Set ``KAFKA_BOOTSTRAP_SERVERS`` to run them against another broker (e.g. Apache Kafka).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "test-artifacts"
ROOT = Path(__file__).parent
#: Tests that start whole stacks (five services each, or the launcher's stand-ins). They
#: share one xdist worker, one after the other: two stacks at once would overrun the
#: database's connection limit and the two cores they measure their drills on, while the
#: other workers run the many tests that mostly wait on a poll or a broker round trip.
STACK_TESTS = (ROOT / "tests", ROOT / "libs" / "devstack" / "tests")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every stack-starting test in the ``stacks`` group (``--dist loadgroup``)."""
    for item in items:
        if any(item.path.is_relative_to(root) for root in STACK_TESTS):
            item.add_marker(pytest.mark.xdist_group("stacks"))


@pytest.fixture(scope="session")
def worker_file() -> Callable[[str], str]:
    """``name`` made per xdist worker (``broker-gw0.log``): workers never share a file."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")

    def per_worker(name: str) -> str:
        if not worker:
            return name
        stem, dot, suffix = name.rpartition(".")
        return f"{stem}-{worker}{dot}{suffix}" if dot else f"{name}-{worker}"

    return per_worker


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
async def kafka_bootstrap(
    artifacts_dir: Path, worker_file: Callable[[str], str]
) -> AsyncIterator[str]:
    """Bootstrap servers of a broker private to this test session."""
    external = os.environ.get("OMS_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    from oms_devstack.broker import Broker
    from oms_devstack.ports import free_port

    broker = Broker(free_port(), artifacts_dir / worker_file("test-broker.log"))
    await broker.start()
    try:
        yield broker.bootstrap
    finally:
        await broker.stop()
