"""The session-wide rule for everything under tests/: no personal data in service logs.

The rule used to be a test module named to run last, reading whatever lay in
test-artifacts/. It is now a session-scoped fixture: autouse, so it is set up before the
first test here and torn down after the last one, when every stack of the session (the
shared one and each module's own) has stopped and flushed its logs. It then reads only
what this session wrote (`SessionLogs`), whatever order the tests ran in, and fails the
session (an error at the teardown of its last test) if a customer's contact appears in a
log or a service log line is not one JSON object.

Two sessions running at once in the same checkout append to the same log files, so each
would also read the other's lines; CI runs one session per checkout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oms_devstack.stack import Stack
from tests.log_scan import SessionLogs, customer_contacts, forged_lines, personal_data

#: Each service of a test stack keeps at most 3 idle database connections (6 at once)
#: instead of the deployed 5 (10): the session's stack and a module's own stack run side by
#: side, and with the default pools the two came within a few connections of the
#: server's 100 (the stacks inherit this process's environment).
os.environ.setdefault("DB_POOL_SIZE", "3")

#: The root conftest's ``artifacts_dir``; its sizes are taken when this conftest is loaded
#: (before any test runs), since the fixture itself only exists once a test asks for it.
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
_BEGIN = SessionLogs.begin(ARTIFACTS)
#: Every stack a fixture set up this session: each must have left logs to scan.
_STACKS: list[Stack] = []


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Any:
    result = yield
    if isinstance(result, Stack):
        _STACKS.append(result)
    return result


@pytest.fixture(scope="session", autouse=True)
def no_personal_data_in_this_sessions_logs(artifacts_dir: Path) -> Iterator[None]:
    assert artifacts_dir.resolve() == ARTIFACTS, f"artifacts moved to {artifacts_dir}"
    yield
    written = _BEGIN.written()
    unscanned = [
        str(stack.log_path(name).relative_to(ARTIFACTS))
        for stack in _STACKS
        for name in stack.names
        if stack.log_path(name).resolve() not in {log.resolve() for log in written}
    ]
    problems = [f"not written this session, so not scanned: {log}" for log in unscanned]
    contacts = customer_contacts()
    assert {"+8613800000001", "li.lei@example.com", "Li Lei", "1 Demo Road"} <= contacts
    leaks = personal_data(written, contacts, ARTIFACTS)
    problems += [f"customer data in a log: {leak}" for leak in leaks]
    problems += [f"not one JSON object: {line}" for line in forged_lines(written, ARTIFACTS)]
    if problems:
        pytest.fail(
            f"this session's logs ({len(written)} written) break the logging rules:\n"
            + "\n".join(problems),
            pytrace=False,
        )
