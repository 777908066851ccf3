"""API fuzzing (issue 10): schemathesis against every service's own OpenAPI document.

A bounded number of generated requests per operation, valid and invalid, against a stack
of its own (fuzzing creates odd data that other tests should not see). Every answer must
be: no 5xx, a 4xx that is problem+json, and a response that matches the documented schema
and status codes. Operator endpoints are called with an operator identity so the fuzzer
gets past the identity check and into the validation behind it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from oms_devstack.stack import Stack

#: Generated requests per operation (OMS_FUZZ_EXAMPLES raises it for a deeper run).
EXAMPLES = int(os.environ.get("OMS_FUZZ_EXAMPLES", "8"))
SERVICES = ["order-svc", "inventory-svc", "customer-svc", "channel-gateway", "notifier"]
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
async def fuzz_stack(artifacts_dir: Path) -> AsyncIterator[Stack]:
    stack = Stack.for_tests(artifacts_dir / "e2e-fuzz-stack")
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop(drop_databases=True)


@pytest.fixture(scope="module", params=SERVICES)
def api_schema(request: pytest.FixtureRequest, fuzz_stack: Stack) -> Any:
    base = fuzz_stack.url(request.param)
    return schemathesis.openapi.from_url(f"{base}/openapi.json")


def problem_json_for_client_errors(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A refused request says why in problem+json (RFC 9457), whatever the service."""
    if 400 <= response.status_code < 500:
        content_type = ";".join(response.headers.get("content-type", []))
        assert PROBLEM_JSON in content_type, (
            f"{case.method} {case.formatted_path} answered {response.status_code} "
            f"with {content_type!r}"
        )
    return None


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_5xx_problem_json_on_4xx_and_documented_responses(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"X-Operator": "fuzzer"},
        additional_checks=[problem_json_for_client_errors],
        timeout=30,
    )
