"""The workflow rules over HTTP: read the active set, replace it (an audited operator
action: every version is kept with who set it and when, and the audit trail records the
version replaced and the new one, with a summary of each).

A PUT is validated whole before anything is stored: each condition is parsed (syntax and
known facts), states and targets are checked against the state machine; 422 names the
rule (``rules.<index>.<field>``) and, for a condition, the position of the error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from oms_servicekit.audit import record_audit
from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem
from order_svc.adapters.workflow_store import WorkflowStore
from order_svc.api.roles import ORDERS_READ, OrdersWriter
from order_svc.api.routes import SettingsDep
from order_svc.api.workflow_schemas import WorkflowRuleIn, WorkflowRulesIn, WorkflowRulesOut
from order_svc.domain.workflow import FACT_TYPES, RuleSetError, WorkflowRule, parse_rules
from order_svc.workflow import ActiveRules, active_rules, workflow_config

log = logging.getLogger(__name__)

router = APIRouter(tags=["workflow"])


def _out(rule: WorkflowRule) -> WorkflowRuleIn:
    return WorkflowRuleIn.model_validate(rule.as_data())


def _summary(version: int | None, rules: Sequence[WorkflowRule]) -> dict[str, Any]:
    """What the audit keeps of a rule set: its version (None: the deployment's defaults)
    and its rules' names, in order, and how many are enabled. The version itself is kept whole
    in ``workflow_rule_sets``."""
    return {
        "version": version,
        "rules": [r.name for r in rules],
        "enabled": sum(1 for r in rules if r.enabled),
    }


@router.get("/workflow/rules", response_model=WorkflowRulesOut, dependencies=ORDERS_READ)
async def get_workflow_rules(runtime: RuntimeDep, settings: SettingsDep) -> WorkflowRulesOut:
    """The rules in force, in the order they are tried."""
    async with runtime.uow() as uow:
        active = await active_rules(uow, workflow_config(settings))
    return WorkflowRulesOut(
        rules=[_out(r) for r in active.rules],
        source="default" if active.version is None else "stored",
        version=active.version,
        set_by=active.set_by,
        set_at=active.set_at,
        facts=sorted(FACT_TYPES),
    )


@router.put(
    "/workflow/rules",
    response_model=WorkflowRulesOut,
    responses={
        401: {"description": "no operator"},
        422: {"description": "a rule is invalid (its index, field, and error position)"},
    },
)
async def put_workflow_rules(
    body: WorkflowRulesIn, runtime: RuntimeDep, settings: SettingsDep, operator: OrdersWriter
) -> WorkflowRulesOut:
    """Replace the rule set for every replica; orders follow it from their next step."""
    try:
        rules = parse_rules([r.model_dump() for r in body.rules])
    except RuleSetError as exc:
        where = "rules" if exc.index is None else f"rules.{exc.index}.{exc.field}"
        name = "" if exc.index is None else f"rule {exc.index}: "
        raise Problem(
            422, f"{name}{exc.message}", field=where, index=exc.index, position=exc.position
        ) from None
    now = datetime.now(UTC)
    async with runtime.uow() as uow:
        store = WorkflowStore(uow.session)
        # One replacement at a time, so the version read as "before" is the one replaced.
        await store.lock_for_replace()
        replaced: ActiveRules = await active_rules(uow, workflow_config(settings))
        version = await store.store([r.as_data() for r in rules], operator, now)
        await record_audit(
            uow.session,
            actor=operator,
            action="replace",
            entity="workflow_rules",
            entity_id=str(version),
            before=_summary(replaced.version, replaced.rules),
            after=_summary(version, rules),
        )
        await uow.commit()
    log.info(
        "workflow rules replaced",
        extra={"version": version, "operator": operator, "rules": [r.name for r in rules]},
    )
    return WorkflowRulesOut(
        rules=[_out(r) for r in rules],
        source="stored",
        version=version,
        set_by=operator,
        set_at=now,
        facts=sorted(FACT_TYPES),
    )
