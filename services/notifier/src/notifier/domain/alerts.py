"""What an alert about an order exception says. Pure logic, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ORDER_EXCEPTION = "order_exception"
#: The states an alert goes through (raised open; people acknowledge and resolve it).
ALERT_STATES = ("open", "acknowledged", "resolved")


@dataclass(frozen=True)
class LineRejection:
    line_no: int
    sku: str
    qty: int
    reason: str
    available: int | None = None

    def describe(self) -> str:
        text = f"line {self.line_no} {self.sku} x{self.qty}: {self.reason}"
        if self.available is not None:
            text += f" (available {self.available})"
        return text


def stock_rejection_message(lines: Sequence[LineRejection]) -> str:
    """``stock rejected: <reasons>``, one reason per rejected line, in line order."""
    reasons = "; ".join(line.describe() for line in sorted(lines, key=lambda ln: ln.line_no))
    return f"stock rejected: {reasons or 'no reason given'}"


def rejection_reasons(lines: Sequence[LineRejection]) -> list[str]:
    """The distinct reasons, sorted (for filtering and grouping alerts)."""
    return sorted({line.reason for line in lines})
