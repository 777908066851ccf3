"""The OMS event runtime.

Events leave a service only through its outbox (written in the same transaction as the
state change) and enter it only through a consumer that records each event id in an
inbox in the same transaction as the effect. Together with at-least-once Kafka delivery
this makes every effect happen exactly once.
"""

from oms_messaging.consumer import BatchHandler, ConsumerRunner, Handler
from oms_messaging.context import correlation_id_var
from oms_messaging.errors import MAX_EVENT_BYTES, EventTooLarge
from oms_messaging.inbox import INBOX_TABLE, Inbox, InboxTable
from oms_messaging.relay import OutboxRelay
from oms_messaging.unit_of_work import UnitOfWork, UnitOfWorkFactory

__all__ = [
    "INBOX_TABLE",
    "MAX_EVENT_BYTES",
    "BatchHandler",
    "ConsumerRunner",
    "EventTooLarge",
    "Handler",
    "Inbox",
    "InboxTable",
    "OutboxRelay",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "correlation_id_var",
]
