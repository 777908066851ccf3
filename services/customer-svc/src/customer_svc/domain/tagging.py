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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
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


@lru_cache(maxsize=512)
def _compiled(expression: str) -> rule_engine.Rule:
    """Compiling is far dearer than matching: each expression is compiled once."""
    return compile_rule(expression)


def rule_tags(rules: Iterable[TagRule], fact_values: Mapping[str, Any]) -> dict[str, str]:
    """``{tag: rule name}`` of every rule that matches (first rule per tag wins)."""
    tags: dict[str, str] = {}
    for rule in rules:
        try:
            matched = _compiled(rule.expression).matches(dict(fact_values))
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


# -- facts kept as running totals ------------------------------------------------------


@dataclass(frozen=True)
class OrderTotals:
    """A customer's running totals of live (not cancelled) orders and complaints: what
    the facts need, kept as each order arrives or is cancelled, so evaluating the rules
    costs the same for a buyer with ten thousand orders as for a new one."""

    order_count: int = 0
    lifetime_value: Decimal = Decimal(0)
    last_order_at: datetime | None = None
    #: Live orders per channel.
    channels: Mapping[str, int] = field(default_factory=dict)
    complaints: int = 0


@dataclass(frozen=True)
class DayTally:
    """Cold-chain and fragile live orders (and their items) of one UTC calendar day."""

    day: date
    cold_chain_orders: int = 0
    cold_chain_items: int = 0
    fragile_orders: int = 0
    fragile_items: int = 0


#: The longest window a fact looks back over, in days (``fragile_*_180d``).
LONGEST_WINDOW_DAYS = 180


def window_start(now: datetime, days: int) -> date:
    """The first UTC calendar day a ``days``-day window ending today counts."""
    return (now - timedelta(days=days)).date()


def facts_from_totals(
    totals: OrderTotals, days: Iterable[DayTally], now: datetime
) -> dict[str, Any]:
    """The facts rules are evaluated on, from running totals and per-day tallies.

    The same facts as :func:`facts`, except that the 90- and 180-day windows count whole
    UTC calendar days (an order of the window's first day counts all that day).
    """
    d90, d180 = window_start(now, 90), window_start(now, LONGEST_WINDOW_DAYS)
    tallies = list(days)
    cold = [t for t in tallies if t.day >= d90]
    fragile = [t for t in tallies if t.day >= d180]
    last = totals.last_order_at
    return {
        "order_count": float(totals.order_count),
        "lifetime_value": float(totals.lifetime_value),
        "complaints": float(totals.complaints),
        "cold_chain_orders_90d": float(sum(t.cold_chain_orders for t in cold)),
        "cold_chain_items_90d": float(sum(t.cold_chain_items for t in cold)),
        "fragile_orders_180d": float(sum(t.fragile_orders for t in fragile)),
        "fragile_items_180d": float(sum(t.fragile_items for t in fragile)),
        "days_since_last_order": None if last is None else (now - last).total_seconds() / 86400,
        "channels": sorted(c for c, n in totals.channels.items() if n > 0),
    }
