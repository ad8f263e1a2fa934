"""The pure rules of Stripe Tax in billing (the address sent, the tax read from an invoice) and
in the emulator (each line's taxable amount, rounding)."""

import pytest
from tatame_devstack.stripe_emulator.tax import Location, location_of, tax_amount, taxable_amounts

from services.billing.errors import InvalidArgument
from services.billing.tax import TaxLocation, automatic_tax_status, checked_address, invoice_tax


def test_the_address_sent_has_an_upper_case_country_and_only_the_fields_given() -> None:
    given = TaxLocation(country=" de ", postal_code=" 10115 ", city="Berlin")

    assert checked_address(given) == {"country": "DE", "postal_code": "10115", "city": "Berlin"}


@pytest.mark.parametrize("country", ["", "D", "DEU", "1A", "ÄÖ"])
def test_a_country_that_is_not_two_letters_is_refused(country: str) -> None:
    with pytest.raises(InvalidArgument):
        checked_address(TaxLocation(country=country))


def test_an_invoice_tax_is_the_sum_of_its_total_taxes() -> None:
    invoice = {
        "total_taxes": [{"amount": 380}, {"amount": 20}],
        "automatic_tax": {"enabled": True, "status": "complete"},
    }

    assert (invoice_tax(invoice), automatic_tax_status(invoice)) == (400, "complete")
    assert (invoice_tax({"total_taxes": None}), automatic_tax_status({})) == (0, None)


def test_a_discount_is_shared_among_positive_lines_before_tax() -> None:
    assert taxable_amounts([1000, 3000], 400) == [900, 2700]
    assert taxable_amounts([-500, 2000], 300) == [-500, 1700]  # a credit keeps its amount
    assert taxable_amounts([333, 333, 334], 100) == [300, 300, 300]
    assert taxable_amounts([100], 500) == [0]


def test_tax_rounds_half_away_from_zero_and_credits_are_negative() -> None:
    germany = Location(country="DE", state=None)

    assert [tax_amount(a, germany) for a in (1900, 50, -1900)] == [361, 10, -361]
    assert tax_amount(1900, Location(country="BR", state=None)) == 0  # not registered there
    assert tax_amount(1900, None) == 0


@pytest.mark.parametrize(
    ("address", "located"),
    [
        ({"country": "DE"}, True),
        ({"country": "US", "postal_code": "94103"}, True),
        ({"country": "US", "postal_code": "94103-1234"}, True),
        ({"country": "US"}, False),
        ({"country": "CA"}, False),
        ({"country": "CA", "state": "QC"}, True),
        ({"country": "de"}, False),
        (None, False),
    ],
)
def test_the_emulator_locates_an_address_as_stripe_tax_requires(
    address: dict[str, str] | None, located: bool
) -> None:
    assert (location_of(address) is not None) == located
