"""Why inventory refused an order's stock, as the exception queue's reason (pure).

The reason is ``"<cause> (<detail>)"`` (see ``domain.exceptions.classify``). A line over
a buyer's cap per customer makes the cause ``customer_limit``, whatever the other lines
say: more stock or another warehouse would not help, a person decides (cancel, or retry
once the buyer's other orders are cancelled). Any other refusal is ``stock_rejected``.
"""

from __future__ import annotations

from collections.abc import Sequence

from oms_contracts.events import RejectedLine

CUSTOMER_LIMIT = "customer_limit"


def _line_detail(line: RejectedLine) -> str:
    if line.reason == CUSTOMER_LIMIT:
        left = "?" if line.available is None else line.available
        return f"{line.sku}: {line.qty} asked, this customer may take {left} more"
    return f"{line.sku}: {line.reason}"


def refusal_reason(lines: Sequence[RejectedLine]) -> str:
    """``"customer_limit (SKU-1: 2 asked, this customer may take 0 more)"`` or
    ``"stock_rejected (SKU-1: insufficient, SKU-2: channel_cap)"``."""
    cause = CUSTOMER_LIMIT if any(ln.reason == CUSTOMER_LIMIT for ln in lines) else "stock_rejected"
    return f"{cause} ({', '.join(_line_detail(ln) for ln in lines)})"
