"""inventory-svc's business metrics beside the runtime's (``/metrics``).

Counters move only after the transaction that decided commits (``uow.after_commit``), so
a consumer batch that is rolled back and replayed is counted once.
"""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter

from oms_servicekit.metrics import ScrapeQuery

RESERVATION_LINES_REJECTED = Counter(
    "oms_reservation_lines_rejected",
    "Order lines whose reservation was refused, by reason "
    "(insufficient, channel_cap, channel_paused, unknown_sku, customer_limit).",
    ["reason"],
)
# Every reason exists from the start (at 0), so rates and alerts work before the first one.
for _reason in ("insufficient", "channel_cap", "channel_paused", "unknown_sku", "customer_limit"):
    RESERVATION_LINES_REJECTED.labels(_reason)


def count_rejections(reasons: Tally[str]) -> None:
    for reason, n in reasons.items():
        RESERVATION_LINES_REJECTED.labels(reason).inc(n)


RESERVATION_SWEEP_FAILURES = Counter(
    "oms_reservation_sweep_failures",
    "Expired holds the sweeper could not release (each is tried again on its next run).",
)


def count_sweep_failures(n: int) -> None:
    RESERVATION_SWEEP_FAILURES.inc(n)


#: Gauges computed from the stock pool at scrape time (the data is the truth, whatever
#: replica is scraped).
SCRAPE_QUERIES = [
    ScrapeQuery(
        "oms_stock_available_units",
        "Available units (on hand - reserved) per warehouse.",
        "SELECT warehouse, sum(on_hand - reserved) FROM stock GROUP BY warehouse",
        ("warehouse",),
    ),
    ScrapeQuery(
        "oms_stock_reserved_units",
        "Reserved units per warehouse.",
        "SELECT warehouse, sum(reserved) FROM stock GROUP BY warehouse",
        ("warehouse",),
    ),
    ScrapeQuery(
        "oms_skus_below_safety_stock",
        "SKUs whose total available is below their safety stock.",
        "SELECT count(*) FROM ("
        " SELECT p.sku FROM sku_policies p JOIN stock s ON s.sku = p.sku"
        " WHERE p.safety_stock > 0 GROUP BY p.sku, p.safety_stock"
        " HAVING sum(s.on_hand - s.reserved) < p.safety_stock) below",
    ),
]
