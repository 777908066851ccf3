"""Who may produce which event: exactly one service per event type.

Every event model names its owner (``Event.owner``). The unit of work checks it when an
event is written to a service's outbox, so a second producer of a fact fails loudly in
its first test instead of silently bypassing the service that owns the aggregate.
"""

from __future__ import annotations

from typing import Final

CHANNEL_GATEWAY: Final = "channel-gateway"
ORDER_SVC: Final = "order-svc"
INVENTORY_SVC: Final = "inventory-svc"
CUSTOMER_SVC: Final = "customer-svc"
NOTIFIER: Final = "notifier"

#: The services of the OMS, by the name they publish under (``Envelope.producer``).
SERVICES: Final = frozenset({CHANNEL_GATEWAY, ORDER_SVC, INVENTORY_SVC, CUSTOMER_SVC, NOTIFIER})


class NotTheOwner(Exception):
    """A service tried to publish an event type that another service owns."""

    def __init__(self, event_type: str, owner: str, producer: str) -> None:
        super().__init__(f"{producer} may not publish {event_type}: its one producer is {owner}")
        self.event_type = event_type
        self.owner = owner
        self.producer = producer


def check_owner(event_type: str, owner: str, producer: str) -> None:
    """Raise :class:`NotTheOwner` when ``producer`` is an OMS service other than ``owner``.

    Producers that are not services (test harnesses, drills, the bench) inject events the
    way a real producer would and are not checked.
    """
    if producer in SERVICES and producer != owner:
        raise NotTheOwner(event_type, owner, producer)
