"""Which role each notifier endpoint needs (issue 11).

``alerts:ack``: acknowledging an alert (on-call operators). ``channels:admin``: adding and
removing subscriptions, because a subscription sends alert contents (order ids, customers'
channels) to an outside e-mail address or webhook URL: that is integration configuration,
more than acknowledging, so it goes with the administrators' role. Both record the caller's
subject. In ``AUTH_MODE=jwt`` the reads need a token too: events, alerts and the board's
stream and JSON API ``orders:read`` (event payloads' contact data and addresses masked
without ``customers:pii``), subscriptions ``channels:admin``; the board's page and static
files stay open (they hold no data). Dev mode keeps every read open.

Each applied action (an acknowledgement, a subscription created or deleted) writes one
row of the audit trail in its own transaction; acknowledging an acknowledged alert
writes none. Reading the trail (``GET /audit``) needs ``alerts:ack``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from oms_servicekit.auth import operator_with_role

ALERTS_ROLE = "alerts:ack"
#: The operator (token subject, or X-Operator in dev mode) holding ``alerts:ack``.
AlertsAcker = Annotated[str, Depends(operator_with_role(ALERTS_ROLE))]
#: The operator holding ``channels:admin``: subscriptions are integration configuration.
SubscriptionsAdmin = Annotated[str, Depends(operator_with_role("channels:admin"))]
