"""Which orders need the credit check: a pure rule, plain data in, a reason out.

The credit risk is where goods leave before the money is in:

- a channel whose policy says so (distribution and B2B platforms: the buyer is a
  business that orders on its own account);
- payment terms on account or cash on delivery, on any channel;
- an amount over a threshold, on any channel and whatever the terms.

Everything else (a prepaid retail order) skips the check and goes straight on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class PaymentTerms(StrEnum):
    """How a channel's order is paid (``OrderReceived.payment_terms``)."""

    PREPAID = "prepaid"
    ON_ACCOUNT = "on_account"
    CASH_ON_DELIVERY = "cash_on_delivery"


#: The terms that leave the goods unpaid until after they ship.
CREDIT_TERMS: frozenset[str] = frozenset({PaymentTerms.ON_ACCOUNT, PaymentTerms.CASH_ON_DELIVERY})


@dataclass(frozen=True)
class CreditPolicy:
    """When an order needs the credit check (every field a setting of order-svc)."""

    #: Channels whose every order is checked (``CREDIT_CHECK_CHANNELS``).
    channels: frozenset[str] = frozenset()
    #: Payment terms whose orders are checked, on any channel.
    payment_terms: frozenset[str] = CREDIT_TERMS
    #: Orders whose total is above this are checked; None = no amount criterion.
    amount_over: Decimal | None = None
    #: Every order is checked (what a bureau set up without a rule used to mean).
    every_order: bool = False

    @classmethod
    def of(
        cls,
        *,
        channels: Iterable[str] = (),
        payment_terms: Iterable[str] = CREDIT_TERMS,
        amount_over: Decimal | None = None,
        every_order: bool = False,
    ) -> CreditPolicy:
        terms = frozenset(payment_terms)
        unknown = terms - {t.value for t in PaymentTerms}
        if unknown:
            raise ValueError(f"unknown payment terms: {sorted(unknown)}")
        if amount_over is not None and amount_over < 0:
            raise ValueError("amount_over must not be negative")
        return cls(frozenset(channels), terms, amount_over, every_order)

    def reason(self, *, channel: str, payment_terms: str | None, total: Decimal) -> str | None:
        """Why an order needs the check, or None when it skips it."""
        if self.every_order:
            return "every order"
        if channel in self.channels:
            return f"channel {channel}"
        terms = payment_terms or PaymentTerms.PREPAID
        if terms in self.payment_terms:
            return f"payment terms {terms}"
        if self.amount_over is not None and total > self.amount_over:
            return f"amount {total} over {self.amount_over}"
        return None

    def requires(self, *, channel: str, payment_terms: str | None, total: Decimal) -> bool:
        return self.reason(channel=channel, payment_terms=payment_terms, total=total) is not None


#: The check for every order (a bureau configured without a rule, as tests set it up).
EVERY_ORDER = CreditPolicy(every_order=True)
