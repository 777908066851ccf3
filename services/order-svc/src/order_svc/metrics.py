"""order-svc's business gauges for ``/metrics``, computed from its tables at scrape time.

Rates (orders created and confirmed, SLA breaches, credit degradations, exceptions raised)
come from the runtime's ``oms_events_emitted_total``; these gauges say how things stand.
"""

from __future__ import annotations

from prometheus_client import Gauge

from oms_servicekit.metrics import ScrapeQuery

SCRAPE_QUERIES = [
    ScrapeQuery(
        "oms_orders",
        "Orders per state and channel.",
        "SELECT state, channel, count(*) FROM orders GROUP BY state, channel",
        ("state", "channel"),
    ),
    ScrapeQuery(
        "oms_open_exceptions",
        "Exception orders waiting for a person, per cause.",
        "SELECT cause, count(*) FROM order_exceptions WHERE state = 'open' GROUP BY cause",
        ("cause",),
    ),
    ScrapeQuery(
        "oms_sla_overdue_orders",
        "Orders past an SLA deadline whose stage has not ended, per stage.",
        "SELECT stage, count(*) FROM order_sla"
        " WHERE ended_at IS NULL AND deadline_at < now() GROUP BY stage",
        ("stage",),
    ),
    ScrapeQuery(
        "oms_credit_degraded_orders",
        "Orders that went on without a credit answer (flagged for review).",
        "SELECT count(*) FROM orders WHERE credit_degraded",
    ),
]

#: Set by the periodic consistency check (not computed at scrape time: it reads
#: inventory-svc over HTTP), per kind of disagreement between orders and stock
#: reservations; every kind is set, 0 when none.
CONSISTENCY_DISAGREEMENTS = Gauge(
    "oms_consistency_disagreements",
    "Disagreements between order states and inventory's stock reservations, per kind, "
    "at the last consistency check.",
    ["service", "kind"],
)
