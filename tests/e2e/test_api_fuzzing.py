"""API fuzzing (issue 10): schemathesis against every service's own OpenAPI document.

A bounded number of generated requests per operation, valid and invalid, against a stack
of its own (fuzzing creates odd data that other tests should not see). Every answer must
be: no 5xx, a 4xx that is problem+json, and a response that matches the documented schema
and status codes. Operator endpoints are called with an operator identity so the fuzzer
gets past the identity check and into the validation behind it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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


#: What the issue asks of every answer: no 5xx, problem+json on 4xx, and status codes,
#: content types and bodies as documented. (schemathesis' stricter "accepts every
#: schema-valid request" checks are left out: a business rule may refuse what the schema
#: allows, with a 4xx naming the field.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    problem_json_for_client_errors,
]


def fuzz(base_url: str) -> list[str]:
    """Run every operation of the service's OpenAPI; the failures, one line each."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "no operations found"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=base_url,
                headers={"X-Operator": "fuzzer"},
                checks=CHECKS,
                timeout=30,
            )

        try:
            exercise()
        except Exception as exc:  # every operation is tried; all failures are reported
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            summary = " | ".join(ln for ln in lines if not ln.startswith("Reproduce"))[:700]
            failures.append(f"{operation.label}: {type(exc).__name__}: {summary}")
    return failures


@pytest.mark.parametrize("service", SERVICES)
async def test_no_5xx_problem_json_on_4xx_and_documented_responses(
    fuzz_stack: Stack, service: str
) -> None:
    failures = await asyncio.to_thread(fuzz, fuzz_stack.url(service))
    assert failures == []
