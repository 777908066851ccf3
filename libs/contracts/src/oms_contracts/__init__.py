"""Contracts between the OMS services: every event, its envelope and its topic.

Services share these models and nothing else: no tables, no domain classes.
"""

from oms_contracts.envelope import Envelope, Event, make_envelope
from oms_contracts.owners import SERVICES, NotTheOwner, check_owner
from oms_contracts.registry import REGISTRY, EventRegistry, UnknownEventError
from oms_contracts.topics import Topic, all_topics, topic_for

__all__ = [
    "REGISTRY",
    "SERVICES",
    "Envelope",
    "Event",
    "EventRegistry",
    "NotTheOwner",
    "Topic",
    "UnknownEventError",
    "all_topics",
    "check_owner",
    "make_envelope",
    "topic_for",
]
