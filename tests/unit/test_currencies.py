"""Prices in several currencies: their mirror row, a price as billed in a currency, and the
currency a request may name (pure logic; the flows are in tests/e2e/test_currencies.py)."""

from datetime import UTC, datetime
from typing import Any

import pytest

from services.billing.catalog import PriceRecord, price_row
from services.billing.currencies import checked_currency, payable_price
from services.billing.customers import CustomerRecord
from services.billing.errors import Conflict, InvalidArgument
from services.common.errors import ErrorReason

MONTHLY = {
    "id": "price_m",
    "product": "prod_1",
    "currency": "usd",
    "unit_amount": 1900,
    "active": True,
    "billing_scheme": "per_unit",
    "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
}
OPTIONS = {
    "usd": {"unit_amount": 1900, "tax_behavior": "unspecified"},
    "brl": {"unit_amount": 9900, "tax_behavior": "exclusive"},
}


def record(**options: dict[str, object]) -> PriceRecord:
    row: dict[str, Any] = price_row({**MONTHLY, "currency_options": options})
    return PriceRecord(**{name: row[name] for name in PriceRecord.__dataclass_fields__})


def customer(currency: str | None) -> CustomerRecord:
    return CustomerRecord("user:u", "cus_1", "a@example.com", "A", datetime.now(UTC), currency)


def test_the_mirror_keeps_the_other_currencies_when_stripe_sends_them_expanded() -> None:
    row = price_row({**MONTHLY, "currency_options": OPTIONS})
    assert row["currency_options"] == {"brl": {"unit_amount": 9900, "tax_behavior": "exclusive"}}


def test_a_price_without_its_currency_options_leaves_the_mirrored_ones_alone() -> None:
    # Stripe sends them only when expanded: an event's price has none.
    assert "currency_options" not in price_row(MONTHLY)


def test_a_price_in_an_option_s_currency_bills_the_option_s_amount() -> None:
    price = record(**OPTIONS)
    in_brl = price.in_currency("brl")
    assert in_brl is not None
    assert (in_brl.currency, in_brl.unit_amount, in_brl.currencies) == ("brl", 9900, ["brl", "usd"])
    assert price.in_currency("usd") is price
    assert price.in_currency("eur") is None
    assert price.currencies == ["usd", "brl"]


@pytest.mark.parametrize("value", ["br", "brlx", "b1l", "bré", "   "])
def test_a_currency_that_is_not_three_letters_is_invalid_currency(value: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        checked_currency(value)
    assert refused.value.reason == ErrorReason.INVALID_CURRENCY


def test_a_currency_is_lower_case_and_empty_is_none() -> None:
    assert (checked_currency("BRL"), checked_currency("")) == ("brl", None)


def test_a_request_without_currency_pays_in_the_customer_s_else_the_price_s() -> None:
    price = record(**OPTIONS)
    assert payable_price(price, requested="", customer=customer("brl")).unit_amount == 9900
    assert payable_price(price, requested="", customer=customer(None)).currency == "usd"


def test_another_currency_than_the_customer_s_is_a_mismatch() -> None:
    with pytest.raises(Conflict) as refused:
        payable_price(record(**OPTIONS), requested="usd", customer=customer("brl"))
    assert refused.value.reason == ErrorReason.CUSTOMER_CURRENCY_MISMATCH


def test_a_currency_the_price_lacks_is_not_offered() -> None:
    with pytest.raises(InvalidArgument) as refused:
        payable_price(record(**OPTIONS), requested="eur", customer=customer(None))
    assert refused.value.reason == ErrorReason.CURRENCY_NOT_OFFERED
