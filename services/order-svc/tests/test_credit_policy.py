"""Which orders need the credit check (plain objects, no I/O), and the settings behind it."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from order_svc.credit import CreditConfig, credit_config, credit_policy
from order_svc.domain.credit_policy import EVERY_ORDER, CreditPolicy, PaymentTerms
from order_svc.domain.order import Line, Order, OrderState
from order_svc.settings import OrderSettings

POLICY = CreditPolicy.of(channels=["distributor", "b2b"], amount_over=Decimal("5000"))
SMALL = Decimal("39.80")


@pytest.mark.parametrize(
    ("channel", "terms", "total", "reason"),
    [
        # prepaid retail: no check, whatever the retail channel
        ("web", "prepaid", SMALL, None),
        ("tmall", None, SMALL, None),
        ("live", "prepaid", Decimal("5000"), None),  # at the threshold, not over it
        # a distribution or B2B channel: every order, prepaid or not
        ("distributor", "prepaid", SMALL, "channel distributor"),
        ("b2b", "on_account", SMALL, "channel b2b"),
        # terms that ship before the money is in, on any channel
        ("web", "on_account", SMALL, "payment terms on_account"),
        ("app", "cash_on_delivery", SMALL, "payment terms cash_on_delivery"),
        # a large amount, prepaid retail included
        ("web", "prepaid", Decimal("5000.01"), "amount 5000.01 over 5000"),
    ],
)
def test_the_rule_names_why_an_order_is_checked(
    channel: str, terms: str | None, total: Decimal, reason: str | None
) -> None:
    assert POLICY.reason(channel=channel, payment_terms=terms, total=total) == reason
    assert POLICY.requires(channel=channel, payment_terms=terms, total=total) is (
        reason is not None
    )


def test_each_criterion_can_be_switched_off() -> None:
    none = CreditPolicy.of(payment_terms=[], amount_over=None)
    for terms in PaymentTerms:
        assert not none.requires(channel="distributor", payment_terms=terms, total=Decimal(10**9))
    assert EVERY_ORDER.reason(channel="web", payment_terms="prepaid", total=SMALL) == "every order"


def test_the_policy_refuses_what_it_cannot_mean() -> None:
    with pytest.raises(ValueError, match="unknown payment terms"):
        CreditPolicy.of(payment_terms=["on_acount"])
    with pytest.raises(ValueError, match="negative"):
        CreditPolicy.of(amount_over=Decimal("-1"))


def order(channel: str, unit_price: str = "19.90") -> Order:
    lines = [Line(1, "SKU-1", 2, Decimal(unit_price))]
    return Order(uuid.uuid4(), channel, "C-1", OrderState.PAID, lines, "CNY")


def test_settings_defaults_check_distribution_credit_terms_and_large_orders() -> None:
    settings = OrderSettings(credit_check_url="http://bureau.invalid/check")
    config = credit_config(settings)
    assert config.enabled
    assert config.reason(order("web")) is None
    assert config.reason(order("web"), "cash_on_delivery") == "payment terms cash_on_delivery"
    assert config.reason(order("distributor")) == "channel distributor"
    assert config.reason(order("b2b")) == "channel b2b"
    assert config.reason(order("app", "2600.00")) == "amount 5200.00 over 5000"


def test_the_rule_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDIT_CHECK_CHANNELS", '["wholesale"]')
    monkeypatch.setenv("CREDIT_CHECK_PAYMENT_TERMS", '["on_account"]')
    monkeypatch.setenv("CREDIT_CHECK_AMOUNT_OVER", "100")
    policy = credit_policy(OrderSettings())
    assert policy == CreditPolicy(
        frozenset({"wholesale"}), frozenset({"on_account"}), Decimal("100"), False
    )
    monkeypatch.setenv("CREDIT_CHECK_EVERY_ORDER", "true")
    assert credit_policy(OrderSettings()).every_order


def test_without_a_bureau_no_order_is_checked() -> None:
    assert credit_config(OrderSettings(credit_check_url="")).reason(order("distributor")) is None
    # Constructed directly (as the flow tests do), a configured check covers every order.
    assert CreditConfig(True, 30.0).reason(order("web")) == "every order"
