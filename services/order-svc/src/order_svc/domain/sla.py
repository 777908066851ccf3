"""SLA stages, their deadlines per channel and order class, and when to alert.

A *stage* is a stretch of an order's life with a promise attached: "review" runs from
the moment the order is received until it is confirmed (paid and its stock held), so an
order parked waiting for payment, stock or an operator keeps its clock running. A stage
that ends in cancellation is closed without a verdict: nobody was late for it.

Deadlines come from a policy (stage -> channel -> order class -> seconds) whose ``"*"``
channel is the default; the shipped defaults are the issue's: normal orders reviewed
within 2 h, urgent ones within 30 min. Overrides are merged over the defaults, so a
test (or one channel) can shorten one entry without restating the rest.

Everything here is pure: the scheduler and the transition hook do the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from order_svc.domain.order import OrderState

S = OrderState

#: The share of a stage's allowance after which the order is "at risk".
AT_RISK_FRACTION = 0.8

#: The channel key that applies to every channel without its own entry.
ANY_CHANNEL = "*"

#: Seconds per stage, channel and order class (``priority`` on the order).
PolicyMap = Mapping[str, Mapping[str, Mapping[str, float]]]

DEFAULT_POLICY: dict[str, dict[str, dict[str, float]]] = {
    "review": {ANY_CHANNEL: {"normal": 2 * 3600.0, "urgent": 30 * 60.0}},
}


@dataclass(frozen=True)
class Stage:
    """Where a stage starts, where it is met, and where it is closed without a verdict."""

    name: str
    starts: frozenset[OrderState]
    ends: frozenset[OrderState]
    closes: frozenset[OrderState] = frozenset({S.CANCELLED, S.REFUNDED})


#: The stages an SLA can be set on. "ship" has no default deadline; a policy may set one.
STAGES: tuple[Stage, ...] = (
    Stage(
        "review",
        starts=frozenset({S.RECEIVED}),
        ends=frozenset({S.CONFIRMED, S.ROUTED, S.PICKING, S.SHIPPED, S.DELIVERED}),
    ),
    Stage(
        "ship",
        starts=frozenset({S.CONFIRMED}),
        ends=frozenset({S.SHIPPED, S.DELIVERED}),
    ),
)

STAGE_NAMES = frozenset(stage.name for stage in STAGES)


class PolicyError(ValueError):
    """An SLA policy that names an unknown stage or a non-positive allowance."""


@dataclass(frozen=True)
class SlaPolicy:
    """Allowed time per stage, channel and order class."""

    seconds: PolicyMap

    @classmethod
    def with_overrides(cls, overrides: PolicyMap | None = None) -> SlaPolicy:
        """The defaults with ``overrides`` merged in, entry by entry (validated)."""
        merged: dict[str, dict[str, dict[str, float]]] = {
            stage: {channel: dict(classes) for channel, classes in channels.items()}
            for stage, channels in DEFAULT_POLICY.items()
        }
        for stage, channels in (overrides or {}).items():
            if stage not in STAGE_NAMES:
                raise PolicyError(f"unknown SLA stage {stage!r}")
            for channel, classes in channels.items():
                for order_class, seconds in classes.items():
                    if not seconds > 0:
                        raise PolicyError(f"SLA {stage}/{channel}/{order_class} must be > 0")
                    merged.setdefault(stage, {}).setdefault(channel, {})[order_class] = float(
                        seconds
                    )
        return cls(merged)

    def allowance(self, stage: str, channel: str, order_class: str) -> timedelta | None:
        """The channel's own entry, else the default channel's; None = no SLA."""
        channels = self.seconds.get(stage, {})
        for key in (channel, ANY_CHANNEL):
            seconds = channels.get(key, {}).get(order_class)
            if seconds is not None:
                return timedelta(seconds=seconds)
        return None


@dataclass(frozen=True)
class Deadline:
    """One stage's clock for one order."""

    stage: str
    started_at: datetime
    deadline_at: datetime

    @property
    def at_risk_at(self) -> datetime:
        return self.started_at + (self.deadline_at - self.started_at) * AT_RISK_FRACTION

    def seconds_left(self, now: datetime) -> float:
        """Negative once the deadline has passed."""
        return (self.deadline_at - now).total_seconds()


def deadline_for(
    policy: SlaPolicy, stage: str, channel: str, order_class: str, started_at: datetime
) -> Deadline | None:
    allowance = policy.allowance(stage, channel, order_class)
    if allowance is None:
        return None
    return Deadline(stage, started_at, started_at + allowance)


def stages_started(to_state: OrderState) -> list[Stage]:
    """The stages whose clock starts when an order enters ``to_state``."""
    return [stage for stage in STAGES if to_state in stage.starts]


def stages_finished(to_state: OrderState) -> list[Stage]:
    """The stages that end (met or closed) when an order enters ``to_state``."""
    return [stage for stage in STAGES if to_state in stage.ends or to_state in stage.closes]


class Alert(StrEnum):
    AT_RISK = "at_risk"
    BREACHED = "breached"


def due_alert(
    deadline: Deadline,
    *,
    at_risk_sent: bool,
    breached_sent: bool,
    now: datetime,
) -> Alert | None:
    """The alert an open stage owes at ``now``, if any (each is owed at most once).

    Past the deadline only the breach is owed: an at-risk warning nobody got in time
    (the service was down at 80 %) is not worth sending after the fact.
    """
    if breached_sent:
        return None
    if now >= deadline.deadline_at:
        return Alert.BREACHED
    if not at_risk_sent and now >= deadline.at_risk_at:
        return Alert.AT_RISK
    return None
