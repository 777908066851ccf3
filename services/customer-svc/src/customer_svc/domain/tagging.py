"""Tag rules as data: expressions in the ``rule-engine`` language, never ``eval()``.

A rule is ``(name, tag, expression)``; the expression sees only the facts below, computed
from what customer-svc keeps of the customer's orders and complaints. An order counts as
cold-chain (or fragile) when the ORDER's delivery requirements include ``cold_chain``
(``fragile``): customer-svc does not know SKU attributes, and the channel/order-svc
already flag the order; every item of such an order counts as a cold-chain (fragile)
item.

Facts:
``order_count``, ``lifetime_value`` (sum of totals of orders not cancelled),
``complaints`` (count), ``cold_chain_orders_90d``, ``cold_chain_items_90d``,
``fragile_orders_180d``, ``fragile_items_180d``, ``days_since_last_order`` (null if none),
``channels`` (list of channel names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import rule_engine

#: The tag whose presence makes every next order of the customer a cold-chain order.
COLD_CHAIN_TAG = "cold_chain_sensitive"

FACT_TYPES: dict[str, rule_engine.DataType] = {
    "order_count": rule_engine.DataType.FLOAT,
    "lifetime_value": rule_engine.DataType.FLOAT,
    "complaints": rule_engine.DataType.FLOAT,
    "cold_chain_orders_90d": rule_engine.DataType.FLOAT,
    "cold_chain_items_90d": rule_engine.DataType.FLOAT,
    "fragile_orders_180d": rule_engine.DataType.FLOAT,
    "fragile_items_180d": rule_engine.DataType.FLOAT,
    "days_since_last_order": rule_engine.DataType.FLOAT,
    "channels": rule_engine.DataType.ARRAY(rule_engine.DataType.STRING),
}


def _context() -> rule_engine.Context:
    # Unknown names are errors at definition time (type resolver), not silent nulls.
    return rule_engine.Context(type_resolver=rule_engine.type_resolver_from_dict(FACT_TYPES))


class RuleError(ValueError):
    """A rule that cannot be used: ``position`` is the 0-based offset of the error."""

    def __init__(self, message: str, position: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def compile_rule(expression: str) -> rule_engine.Rule:
    """The compiled rule, or :class:`RuleError` naming where it went wrong."""
    try:
        return rule_engine.Rule(expression, context=_context())
    except rule_engine.errors.RuleSyntaxError as exc:
        token = exc.token
        position = len(expression) if token is None else int(token.lexpos)
        raise RuleError(f"syntax error: {exc.message}", position) from None
    except rule_engine.errors.SymbolResolutionError as exc:
        raise RuleError(
            f"unknown fact {exc.symbol_name!r}", _find(expression, exc.symbol_name)
        ) from None
    except rule_engine.errors.EngineError as exc:
        raise RuleError(f"invalid rule: {exc.message}", None) from None


def _find(expression: str, name: str) -> int | None:
    at = expression.find(name)
    return at if at >= 0 else None


@dataclass(frozen=True)
class TagRule:
    name: str
    tag: str
    expression: str


@dataclass(frozen=True)
class OrderFact:
    total: Decimal
    item_count: int
    delivery_requirements: list[str]
    status: str
    channel: str
    ordered_at: datetime


def facts(orders: Iterable[OrderFact], complaint_count: int, now: datetime) -> dict[str, Any]:
    """The facts rules are evaluated on."""
    live = [o for o in orders if o.status != "cancelled"]
    d90, d180 = now - timedelta(days=90), now - timedelta(days=180)
    cold = [o for o in live if "cold_chain" in o.delivery_requirements and o.ordered_at >= d90]
    fragile = [o for o in live if "fragile" in o.delivery_requirements and o.ordered_at >= d180]
    last = max((o.ordered_at for o in live), default=None)
    return {
        "order_count": float(len(live)),
        "lifetime_value": float(sum((o.total for o in live), Decimal(0))),
        "complaints": float(complaint_count),
        "cold_chain_orders_90d": float(len(cold)),
        "cold_chain_items_90d": float(sum(o.item_count for o in cold)),
        "fragile_orders_180d": float(len(fragile)),
        "fragile_items_180d": float(sum(o.item_count for o in fragile)),
        "days_since_last_order": None if last is None else (now - last).total_seconds() / 86400,
        "channels": sorted({o.channel for o in live}),
    }


def rule_tags(rules: Iterable[TagRule], fact_values: Mapping[str, Any]) -> dict[str, str]:
    """``{tag: rule name}`` of every rule that matches (first rule per tag wins)."""
    tags: dict[str, str] = {}
    for rule in rules:
        try:
            matched = compile_rule(rule.expression).matches(dict(fact_values))
        except (RuleError, rule_engine.errors.EngineError):
            matched = False  # a null fact compared, for instance: the rule does not hold
        if matched and rule.tag not in tags:
            tags[rule.tag] = rule.name
    return tags


@dataclass(frozen=True)
class TagChange:
    added: dict[str, str]
    removed: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def diff_rule_tags(current: Mapping[str, str], wanted: Mapping[str, str]) -> TagChange:
    """What to add and remove, given ``current`` {tag: source}: operator tags are never
    touched by rules."""
    added = {t: r for t, r in wanted.items() if t not in current}
    removed = sorted(t for t, src in current.items() if src == "rule" and t not in wanted)
    return TagChange(added, removed)
