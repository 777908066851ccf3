"""Workflow rules as data: which automatic step an order takes in each state.

A rule is plain data: a name, the state it applies in, a condition in the ``rule-engine``
language (parsed by that library against the facts below, never ``eval()``), and an
action: ``advance`` to a state, or ``hold`` the order for manual review with a reason.
Rules are tried in their list order; in a state, the first enabled rule whose condition
holds wins (so hold rules come before the advance rule of the same state). A hold rule
an operator already approved for this order is skipped, so a released order does not
fall into the same hold again.

The flow points that consult the rules (order_svc.workflow) are: an order becoming paid
with its credit OK (hold rules, then "reserve": the stock is asked for), and the stock
being held (``reserved`` -> ``confirmed`` -> ``routed`` -> ``picking``, as far as enabled
rules take it). Every transition a rule makes carries the actor ``rule:<name>``.

Facts a condition may use:
``state`` (string), ``total`` (float, in the order's currency), ``currency``, ``channel``,
``priority`` (strings), ``line_count``, ``item_count`` (floats), ``customer_tags``,
``delivery_requirements``, ``warehouses`` (arrays of strings; ``warehouses`` is where the
stock is held, empty before), ``credit_ok``, ``credit_degraded``, ``routed`` (booleans;
``routed`` once the routing decision is recorded with the held stock), and
``hold_amount_over`` (float, the HOLD_AMOUNT_OVER setting).

A reason may name facts in braces (``"manual_review (amount {total} over
{hold_amount_over})"``); they are substituted as plain text, nothing else is evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

import rule_engine

from order_svc.domain.order import TRANSITIONS, Order, OrderState

S = OrderState

FACT_TYPES: dict[str, rule_engine.DataType] = {
    "state": rule_engine.DataType.STRING,
    "total": rule_engine.DataType.FLOAT,
    "currency": rule_engine.DataType.STRING,
    "channel": rule_engine.DataType.STRING,
    "priority": rule_engine.DataType.STRING,
    "line_count": rule_engine.DataType.FLOAT,
    "item_count": rule_engine.DataType.FLOAT,
    "customer_tags": rule_engine.DataType.ARRAY(rule_engine.DataType.STRING),
    "delivery_requirements": rule_engine.DataType.ARRAY(rule_engine.DataType.STRING),
    "warehouses": rule_engine.DataType.ARRAY(rule_engine.DataType.STRING),
    "credit_ok": rule_engine.DataType.BOOLEAN,
    "credit_degraded": rule_engine.DataType.BOOLEAN,
    "routed": rule_engine.DataType.BOOLEAN,
    "hold_amount_over": rule_engine.DataType.FLOAT,
}

#: The states rules act in, and where an ``advance`` rule may take an order from each.
#: ``paid -> reserved`` asks inventory for the stock (the move happens when it is held).
RULE_TARGETS: dict[OrderState, frozenset[OrderState]] = {
    S.PAID: frozenset({S.RESERVED}),
    S.RESERVED: frozenset({S.CONFIRMED}),
    S.CONFIRMED: frozenset({S.ROUTED, S.PICKING}),
    S.ROUTED: frozenset({S.PICKING}),
}

#: The reason of an advance rule that names none.
DEFAULT_REASONS: dict[OrderState, str] = {
    S.RESERVED: "stock reserved",
    S.CONFIRMED: "paid and reserved",
    S.ROUTED: "routed: {warehouses}",
    S.PICKING: "handed to the warehouse",
}

#: The shipped rule set (overridable by WORKFLOW_RULES_PATH or PUT /workflow/rules).
DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "name": "hold_amount",
        "state": "paid",
        "condition": "total > hold_amount_over",
        "action": "hold",
        "reason": "manual_review (amount {total} over {hold_amount_over})",
    },
    {
        "name": "hold_flagged_customer",
        "state": "paid",
        "condition": "'flagged' in customer_tags",
        "action": "hold",
        "reason": "manual_review (flagged customer)",
    },
    {
        "name": "reserve_when_credit_ok",
        "state": "paid",
        "condition": "credit_ok",
        "action": "advance",
        "target": "reserved",
    },
    {
        "name": "confirm_reserved",
        "state": "reserved",
        "condition": "true",
        "action": "advance",
        "target": "confirmed",
    },
    {
        "name": "route_confirmed",
        "state": "confirmed",
        "condition": "routed",
        "action": "advance",
        "target": "routed",
    },
    {
        "name": "release_to_picking",
        "state": "routed",
        "condition": "true",
        "action": "advance",
        "target": "picking",
        "enabled": False,
    },
]


class RuleSetError(ValueError):
    """A rule set that cannot be used: which rule, which field, and for a condition the
    0-based ``position`` of the error in it (None when there is no single place)."""

    def __init__(
        self, index: int | None, field: str, message: str, position: int | None = None
    ) -> None:
        super().__init__(message)
        self.index = index
        self.field = field
        self.message = message
        self.position = position


def _context() -> rule_engine.Context:
    # Unknown names are errors when the rule is defined (type resolver), not silent nulls.
    return rule_engine.Context(type_resolver=rule_engine.type_resolver_from_dict(FACT_TYPES))


@lru_cache(maxsize=256)
def compile_condition(condition: str) -> rule_engine.Rule:
    """The compiled condition (cached: rules are few, parsing is not free), or
    :class:`RuleSetError` with the position of the error."""
    try:
        return rule_engine.Rule(condition, context=_context())
    except rule_engine.errors.RuleSyntaxError as exc:
        token = exc.token
        position = len(condition) if token is None else int(token.lexpos)
        raise RuleSetError(None, "condition", f"syntax error: {exc.message}", position) from None
    except rule_engine.errors.SymbolResolutionError as exc:
        at = condition.find(exc.symbol_name)
        raise RuleSetError(
            None, "condition", f"unknown fact {exc.symbol_name!r}", at if at >= 0 else None
        ) from None
    except rule_engine.errors.EngineError as exc:
        raise RuleSetError(None, "condition", f"invalid condition: {exc.message}") from None


@dataclass(frozen=True)
class WorkflowRule:
    name: str
    state: OrderState
    condition: str
    action: Literal["advance", "hold"]
    target: OrderState | None = None
    reason: str | None = None
    enabled: bool = True

    def as_data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "condition": self.condition,
            "action": self.action,
            "target": None if self.target is None else self.target.value,
            "reason": self.reason,
            "enabled": self.enabled,
        }


def parse_rules(raw: Sequence[Mapping[str, Any]]) -> list[WorkflowRule]:
    """Validate a rule set given as plain data; :class:`RuleSetError` names the first
    rule (by index) and field that is wrong."""
    rules: list[WorkflowRule] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        rule = _parse_rule(i, item)
        if rule.name in names:
            raise RuleSetError(i, "name", f"rule name {rule.name!r} is used twice")
        names.add(rule.name)
        rules.append(rule)
    return rules


def _parse_rule(i: int, item: Mapping[str, Any]) -> WorkflowRule:
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleSetError(i, "name", "a rule needs a name")
    try:
        state = OrderState(str(item.get("state")))
    except ValueError:
        raise RuleSetError(i, "state", f"unknown state {item.get('state')!r}") from None
    if state not in RULE_TARGETS:
        allowed = ", ".join(s.value for s in RULE_TARGETS)
        raise RuleSetError(i, "state", f"rules apply in {allowed}, not {state}")
    condition = item.get("condition")
    if not isinstance(condition, str) or not condition.strip():
        raise RuleSetError(i, "condition", "a rule needs a condition")
    try:
        compile_condition(condition)
    except RuleSetError as exc:
        raise RuleSetError(i, "condition", exc.message, exc.position) from None
    action = item.get("action")
    reason = item.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise RuleSetError(i, "reason", "the reason must be text")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleSetError(i, "enabled", "enabled must be true or false")
    target: OrderState | None = None
    if action == "advance":
        try:
            target = OrderState(str(item.get("target")))
        except ValueError:
            raise RuleSetError(i, "target", f"unknown state {item.get('target')!r}") from None
        if target not in RULE_TARGETS[state]:
            allowed = ", ".join(sorted(s.value for s in RULE_TARGETS[state]))
            raise RuleSetError(i, "target", f"from {state} a rule may advance to {allowed}")
    elif action == "hold":
        if S.EXCEPTION not in TRANSITIONS[state]:
            raise RuleSetError(i, "action", f"an order in {state} cannot be held")
        if not reason or not reason.strip():
            raise RuleSetError(i, "reason", "a hold rule needs a reason")
    else:
        raise RuleSetError(i, "action", f"action must be advance or hold, not {action!r}")
    return WorkflowRule(name.strip(), state, condition, action, target, reason, enabled)


#: The shipped rules, validated once at import (a broken default is a bug, caught by tests).
DEFAULT_RULE_SET: tuple[WorkflowRule, ...] = tuple(parse_rules(DEFAULT_RULES))


@dataclass(frozen=True)
class Step:
    """What the rules say to do with an order in its current state."""

    rule: str
    action: Literal["advance", "hold"]
    target: OrderState
    reason: str

    @property
    def actor(self) -> str:
        return f"rule:{self.rule}"


def order_facts(
    order: Order,
    *,
    customer_tags: Iterable[str] = (),
    delivery_requirements: Iterable[str] = (),
    credit_ok: bool = False,
    routed: bool = False,
    hold_amount_over: Decimal = Decimal("10000"),
) -> dict[str, Any]:
    """The facts of ``order`` that conditions are evaluated on."""
    return {
        "state": order.state.value,
        "total": float(order.total),
        "currency": order.currency,
        "channel": order.channel,
        "priority": order.priority,
        "line_count": float(len(order.lines)),
        "item_count": float(sum(ln.qty for ln in order.lines)),
        "customer_tags": sorted(set(customer_tags)),
        "delivery_requirements": sorted(set(delivery_requirements)),
        "warehouses": sorted({ln.warehouse for ln in order.lines if ln.warehouse}),
        "credit_ok": credit_ok,
        "credit_degraded": order.credit_degraded,
        "routed": routed,
        "hold_amount_over": float(hold_amount_over),
    }


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def render_reason(template: str, facts: Mapping[str, Any], shown: Mapping[str, str]) -> str:
    """Substitute ``{fact}`` with its text (``shown`` first: exact amounts); unknown names
    stay as written."""

    def text(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in shown:
            return shown[key]
        if key not in facts:
            return match.group(0)
        value = facts[key]
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    return _PLACEHOLDER.sub(text, template)


def _matches(rule: WorkflowRule, facts: Mapping[str, Any]) -> bool:
    try:
        return bool(compile_condition(rule.condition).matches(dict(facts)))
    except (RuleSetError, rule_engine.errors.EngineError):
        return False  # e.g. a comparison the facts' values do not support: no match


def next_step(
    rules: Iterable[WorkflowRule],
    state: OrderState,
    facts: Mapping[str, Any],
    *,
    approved: Iterable[str] = (),
    shown: Mapping[str, str] | None = None,
) -> Step | None:
    """The first enabled rule of ``state`` that holds (hold rules in ``approved``
    skipped), or None: no rule moves the order on from there."""
    skip = set(approved)
    for rule in rules:
        if rule.state is not state or not rule.enabled:
            continue
        if rule.action == "hold" and rule.name in skip:
            continue
        if not _matches(rule, facts):
            continue
        if rule.action == "hold":
            assert rule.reason is not None  # parse_rules requires it
            return Step(
                rule.name, "hold", S.EXCEPTION, render_reason(rule.reason, facts, shown or {})
            )
        assert rule.target is not None
        template = rule.reason or DEFAULT_REASONS[rule.target]
        return Step(rule.name, "advance", rule.target, render_reason(template, facts, shown or {}))
    return None


def advance(
    order: Order,
    rules: Sequence[WorkflowRule],
    facts: Mapping[str, Any],
    at: datetime,
    *,
    approved: Iterable[str] = (),
    shown: Mapping[str, str] | None = None,
    max_steps: int = 8,
) -> list[Step]:
    """Move ``order`` on (after its stock is held) as far as the rules take it.

    Only moves out of ``reserved``, ``confirmed`` and ``routed`` are made here (a move
    out of ``paid`` means asking for stock, which the caller does). Each step is a
    normal transition, so an illegal one raises before anything changes. Returns the
    steps taken; a hold stops the chain with the order in ``exception``.
    """
    taken: list[Step] = []
    approved = tuple(approved)
    for _ in range(max_steps):
        if order.state not in RULE_TARGETS or order.state is S.PAID:
            break
        step = next_step(
            rules,
            order.state,
            {**facts, "state": order.state.value},
            approved=approved,
            shown=shown,
        )
        if step is None:
            break
        if step.action == "hold":
            order.raise_exception(step.reason, at, actor=step.actor)
        else:
            order.move_to(step.target, at=at, actor=step.actor, reason=step.reason)
        taken.append(step)
        if step.action == "hold":
            break
    return taken
