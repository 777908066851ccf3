"""The workflow rules in the order flow: which rule set is active, and the two points
where the rules move orders on without people.

- :func:`continue_paid_order`: an order is paid and its credit is OK (no bureau, the
  bureau approved, or the check degraded): the hold rules may send it to manual review
  (``exception``, cause ``manual_review``); otherwise the "reserve" rule routes it and the
  caller asks inventory for the stock (OrderPaid).
- :func:`advance_reserved_order`: the stock is held: ``reserved`` and then as far as
  the advance rules go (by default ``confirmed`` and ``routed``, where it rests until
  the warehouse picks it).

The active rule set is the newest one stored with ``PUT /workflow/rules`` (in the
service's database, so every replica uses the same), else the deployment's defaults
(WORKFLOW_RULES_PATH, else the shipped ones in order_svc.domain.workflow).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from oms_messaging import UnitOfWork
from order_svc.adapters.workflow_store import OrderContext, WorkflowStore
from order_svc.domain.order import Order, OrderState
from order_svc.domain.workflow import (
    DEFAULT_RULE_SET,
    RuleSetError,
    Step,
    WorkflowRule,
    advance,
    next_step,
    order_facts,
    parse_rules,
)
from order_svc.routing import RoutingConfig, route_paid_order, routing_inputs
from order_svc.settings import OrderSettings

log = logging.getLogger(__name__)

S = OrderState


@dataclass(frozen=True)
class WorkflowConfig:
    hold_amount_over: Decimal = Decimal("10000")
    #: The rules used while none are stored.
    default_rules: tuple[WorkflowRule, ...] = field(default=DEFAULT_RULE_SET)


@lru_cache(maxsize=4)
def load_rules_file(path: str) -> tuple[WorkflowRule, ...]:
    """The rule set of a JSON file (a list of rules, or ``{"rules": [...]}``); a bad
    file raises (start-up stops rather than run with rules nobody meant)."""
    data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = data.get("rules")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise RuleSetError(None, "rules", f"{path}: expected a list of rules")
    return tuple(parse_rules(data))


def workflow_config(settings: OrderSettings) -> WorkflowConfig:
    defaults = (
        load_rules_file(settings.workflow_rules_path)
        if settings.workflow_rules_path
        else DEFAULT_RULE_SET
    )
    return WorkflowConfig(hold_amount_over=settings.hold_amount_over, default_rules=defaults)


#: Parsed stored rule sets by their JSON text (parsing conditions is not free).
_PARSED: dict[str, tuple[WorkflowRule, ...]] = {}


@dataclass(frozen=True)
class ActiveRules:
    rules: tuple[WorkflowRule, ...]
    version: int | None = None
    set_by: str | None = None
    set_at: datetime | None = None


async def active_rules(uow: UnitOfWork, config: WorkflowConfig) -> ActiveRules:
    """The rule set in force now: the newest stored one, else the defaults (read once per
    transaction: a consumer batch applies all its orders under one rule set)."""
    stored = await uow.cached("workflow:active", WorkflowStore(uow.session).active)
    if stored is None:
        return ActiveRules(config.default_rules)
    version = int(stored["version"])
    key = json.dumps(stored["rules"], sort_keys=True)
    rules = _PARSED.get(key)
    if rules is None:
        try:
            rules = tuple(parse_rules(stored["rules"]))
        except RuleSetError:
            # Validated when stored; only a code change can make it unusable. Say so
            # loudly and keep orders moving on the defaults.
            log.exception("stored workflow rules v%s are unusable: using the defaults", version)
            return ActiveRules(config.default_rules)
        if len(_PARSED) > 64:
            _PARSED.clear()
        _PARSED[key] = rules
    return ActiveRules(rules, version, stored["set_by"], stored["set_at"])


def _shown(order: Order, config: WorkflowConfig) -> dict[str, str]:
    """Exact amounts for reasons (facts are floats for the rule language)."""
    return {"total": str(order.total), "hold_amount_over": str(config.hold_amount_over)}


async def continue_paid_order(
    uow: UnitOfWork,
    order: Order,
    config: WorkflowConfig,
    routing: RoutingConfig,
    now: datetime,
    *,
    region: str | None = None,
    requirements: Iterable[str] | None = None,
) -> bool:
    """A paid order whose credit is OK: hold it for review, or route it for reservation.

    Returns True when the caller must ask for the stock (emit OrderPaid after publishing
    the transitions). ``region``/``requirements`` are given for an order not stored
    yet; a stored order's are read. No rule at all: the order waits in ``paid``.
    """
    if region is None or requirements is None:
        region, requirement_list = await routing_inputs(uow, order.id)
    else:
        requirement_list = sorted(set(requirements))
    store = WorkflowStore(uow.session)
    context = await uow.primed_or(("workflow:context", order.id), lambda: store.context(order.id))
    facts = order_facts(
        order,
        customer_tags=context.tags,
        delivery_requirements=requirement_list,
        credit_ok=True,
        hold_amount_over=config.hold_amount_over,
    )
    active = await active_rules(uow, config)
    step = next_step(
        active.rules, S.PAID, facts, approved=context.approved, shown=_shown(order, config)
    )
    if step is None:
        return False
    if step.action == "hold":
        order.raise_exception(step.reason, now, actor=step.actor)
        return False
    decision = await route_paid_order(
        uow, order, routing, now, region=region, requirements=requirement_list
    )
    return decision.outcome != "impossible"


def reserving_rule(rules: Sequence[WorkflowRule]) -> str | None:
    """The enabled rule that asks for the stock of a paid order (the reservation's actor)."""
    for rule in rules:
        if rule.enabled and rule.state is S.PAID and rule.target is S.RESERVED:
            return rule.name
    return None


async def advance_reserved_order(
    uow: UnitOfWork,
    order: Order,
    warehouses: dict[int, str],
    config: WorkflowConfig,
    now: datetime,
) -> list[Step]:
    """The stock is held: ``reserved``, then as far as the advance rules go. Call after
    the routing decision is recorded (the ``routed`` fact is true from then on)."""
    active = await active_rules(uow, config)
    order.reserve(warehouses, now, actor=reserving_actor(active))
    context = await WorkflowStore(uow.session).context(order.id)
    return advance_reserved(order, active, context, config, now)


def reserving_actor(active: ActiveRules) -> str:
    """Who reserves a paid order: the rule that asks for the stock, else the system."""
    name = reserving_rule(active.rules)
    return "system" if name is None else f"rule:{name}"


def advance_reserved(
    order: Order, active: ActiveRules, context: OrderContext, config: WorkflowConfig, now: datetime
) -> list[Step]:
    """A reserved order moved on as far as the advance rules go (no I/O)."""
    facts = order_facts(
        order,
        customer_tags=context.tags,
        delivery_requirements=context.requirements,
        credit_ok=True,
        routed=True,
        hold_amount_over=config.hold_amount_over,
    )
    return advance(
        order, active.rules, facts, now, approved=context.approved, shown=_shown(order, config)
    )
