"""Which role each notifier endpoint needs (issue 11).

``alerts:ack``: acknowledging an alert (on-call operators). ``channels:admin``: adding and
removing subscriptions, because a subscription sends alert contents (order ids, customers'
channels) to an outside e-mail address or webhook URL: that is integration configuration,
more than acknowledging, so it goes with the administrators' role. Both record the caller's
subject. Reads (events, alerts, the board) stay open.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from oms_servicekit.auth import operator_with_role

#: The operator (token subject, or X-Operator in dev mode) holding ``alerts:ack``.
AlertsAcker = Annotated[str, Depends(operator_with_role("alerts:ack"))]
#: The operator holding ``channels:admin``: subscriptions are integration configuration.
SubscriptionsAdmin = Annotated[str, Depends(operator_with_role("channels:admin"))]
