"""Stripe Tax, as the emulator does it: a deterministic rate by the customer's country.

Stripe Tax locates a customer by its address (shipping, then billing; the emulator keeps only
the billing address): outside the US a valid country suffices, the US needs a 5-digit postal
code, Canada a province or postal code. Where the account is "registered" (`RATES`, basis
points) tax is collected at that rate, exclusive of the price; in another recognized country
nothing is collected (`not_collecting`). A customer without a usable location cannot be taxed:
creating an automatic-tax subscription for it, or updating it with
`tax[validate_location]=immediately`, is refused with Stripe's `customer_tax_location_invalid`;
a preview says `requires_location_inputs`.

Also the Tax Calculations API (`POST /v1/tax/calculations`, `GET /v1/tax/calculations/{id}`),
which a PaymentIntent names in `hooks[inputs][tax][calculation]` to be taxed.
"""

from dataclasses import dataclass
from typing import Any, Literal

import stripe
from localstripe.errors import UserError
from localstripe.resources import Customer, StripeObject

from tatame_devstack.stripe_emulator.params import (
    as_bool,
    as_currency,
    as_int,
    as_optional_str,
    as_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.render import render_list, shape

# Where the emulator's account is registered to collect tax, and at what rate (basis points).
RATES = {
    "AU": 1000,
    "CA": 500,
    "DE": 1900,
    "ES": 2100,
    "FR": 2000,
    "GB": 2000,
    "IE": 2300,
    "IT": 2200,
    "NL": 2100,
    "PT": 2300,
    "US": 725,
}
LOCATION_INVALID = "customer_tax_location_invalid"
CALCULATION_TTL_SECONDS = 90 * 24 * 60 * 60

CustomerTaxStatus = Literal["supported", "not_collecting", "unrecognized_location"]


@dataclass(frozen=True, slots=True)
class Location:
    country: str
    state: str | None


def location_of(address: dict[str, Any] | None) -> Location | None:
    """Where Stripe Tax places an address, or None when it cannot (as Stripe requires)."""
    address = address or {}
    country = address.get("country") or ""
    if len(country) != 2 or not country.isalpha() or not country.isupper():
        return None
    postal_code = (address.get("postal_code") or "").strip()
    state = address.get("state") or None
    if country == "US" and not (postal_code[:5].isdigit() and len(postal_code) in (5, 10)):
        return None
    if country == "CA" and not (state or postal_code):
        return None
    return Location(country=country, state=state)


def customer_location(customer_id: str) -> Location | None:
    return location_of(Customer._api_retrieve(customer_id).address)


def customer_tax_status(customer: Customer) -> CustomerTaxStatus:
    found = location_of(customer.address)
    if found is None:
        return "unrecognized_location"
    return "supported" if found.country in RATES else "not_collecting"


def location_invalid(param: str = "customer") -> UserError:
    """Stripe's refusal when a customer's location cannot be taxed."""
    return UserError(
        400,
        "The customer's location isn't recognized. Stripe Tax needs a valid address to "
        "calculate tax: at least a country, and a 5-digit postal code in the US.",
        {"code": LOCATION_INVALID, "param": param},
    )


def require_location(customer_id: str) -> Location:
    found = customer_location(customer_id)
    if found is None:
        raise location_invalid()
    return found


def automatic_tax_enabled(param: str, value: Any) -> bool:
    """`automatic_tax[enabled]` of a create (unset: disabled)."""
    if value is None:
        return False
    if not isinstance(value, dict):
        raise param_error(param, f"Invalid {param}: expected a hash")
    params = dict(value)
    enabled = as_bool(f"{param}[enabled]", params.pop("enabled", None))
    reject_unknown(params, parent=param)
    return enabled


def rate_id(country: str) -> str:
    return f"txr_emulator_{country.lower()}"


def tax_amount(amount: int, location: Location | None) -> int:
    """Tax on `amount` (exclusive; a credit's is negative), rounded half away from zero; 0
    where nothing is collected."""
    rate = RATES.get(location.country, 0) if location is not None else 0
    taxed = (abs(amount) * rate + 5000) // 10000
    return taxed if amount >= 0 else -taxed


def taxable_amounts(amounts: list[int], discount: int) -> list[int]:
    """Each line's amount less its share of an invoice-level `discount` (shared among the
    positive lines in proportion, the rounding left to the last), which is what is taxed."""
    positive = [index for index, amount in enumerate(amounts) if amount > 0]
    subtotal = sum(amounts[index] for index in positive)
    taxable, left = list(amounts), min(discount, subtotal)
    for index in positive:
        share = left if index == positive[-1] else discount * amounts[index] // subtotal
        share = min(share, left, amounts[index])
        taxable[index] -= share
        left -= share
    return taxable


def tax_entries(
    resource: type[stripe.StripeObject],
    taxable: int,
    location: Location | None,
    *,
    amount: int | None = None,
) -> list[dict[str, Any]]:
    """An invoice's `total_taxes` or a line's `taxes` (`resource`: their class) on `taxable`:
    `amount` of tax (the sum of its lines' for an invoice), or the tax on `taxable`."""
    if location is None:
        return []
    collecting = location.country in RATES
    values = {
        "amount": tax_amount(taxable, location) if amount is None else amount,
        "tax_behavior": "exclusive",
        "tax_rate_details": shape(resource.TaxRateDetails, {"tax_rate": rate_id(location.country)}),  # type: ignore[attr-defined]
        "taxability_reason": "standard_rated" if collecting else "not_collecting",
        "taxable_amount": taxable if collecting else 0,
        "type": "tax_rate_details",
    }
    return [shape(resource, values)]


def automatic_tax_of(
    resource: type[stripe.StripeObject], *, enabled: bool, located: bool
) -> dict[str, Any]:
    """The `automatic_tax` hash of an invoice or Checkout Session (`resource`: its class), whose
    customer Stripe Tax has `located` or not."""
    if not enabled:
        return shape(resource, {"enabled": False})
    values: dict[str, Any] = {
        "enabled": True,
        "liability": shape(resource.Liability, {"type": "self"}),  # type: ignore[attr-defined]
        "provider": "stripe",
        "status": "complete" if located else "requires_location_inputs",
    }
    if "disabled_reason" in resource.__annotations__:
        values["disabled_reason"] = None
    return shape(resource, values)


def subscription_automatic_tax(*, enabled: bool) -> dict[str, Any]:
    S = stripe.Subscription.AutomaticTax
    if not enabled:
        return shape(S, {"enabled": False})
    return shape(S, {"enabled": True, "liability": shape(S.Liability, {"type": "self"})})


def render_customer_tax(customer: Customer) -> dict[str, Any]:
    """A customer's `tax` hash (includable: rendered when expanded)."""
    T = stripe.Customer.Tax
    found = location_of(customer.address)
    location = (
        None
        if found is None
        else shape(
            T.Location,
            {"country": found.country, "source": "billing_address", "state": found.state},
        )
    )
    return shape(
        T,
        {
            "automatic_tax": customer_tax_status(customer),
            "ip_address": None,
            "location": location,
            "provider": "stripe",
        },
    )


def checked_customer_tax(value: Any, address: dict[str, Any] | None) -> None:
    """`tax` of a customer update: `validate_location=immediately` refuses an address Stripe
    Tax cannot use; `ip_address` is taken and not kept (the emulator locates by address)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise param_error("tax", "Invalid tax: expected a hash")
    params = dict(value)
    validate = as_str(
        "tax[validate_location]",
        params.pop("validate_location", "auto"),
        choices=("auto", "deferred", "immediately"),
    )
    as_optional_str("tax[ip_address]", params.pop("ip_address", None))
    reject_unknown(params, parent="tax")
    if validate == "immediately" and location_of(address) is None:
        raise location_invalid("address")


class TaxCalculation(StripeObject):
    """A tax calculation for a customer's line items (amounts exclusive of tax)."""

    object = "tax.calculation"
    _id_prefix = "taxcalc_"

    def __init__(
        self,
        currency: Any = None,
        customer: Any = None,
        line_items: Any = None,
        **unknown: Any,
    ) -> None:
        reject_unknown(unknown)
        currency = as_currency(currency)
        customer_id = Customer._api_retrieve(as_str("customer", customer)).id
        if not isinstance(line_items, list) or not line_items:
            raise param_error("line_items", "Missing required param: line_items.")
        lines = []
        for index, item in enumerate(line_items):
            given = dict(item) if isinstance(item, dict) else {}
            name = f"line_items[{index}]"
            amount = as_int(f"{name}[amount]", given.pop("amount", None), minimum=0)
            reference = as_str(f"{name}[reference]", given.pop("reference", None))
            quantity = as_int(f"{name}[quantity]", given.pop("quantity", 1), minimum=1)
            as_str(
                f"{name}[tax_behavior]",
                given.pop("tax_behavior", "exclusive"),
                choices=("exclusive",),
            )
            reject_unknown(given, parent=name)
            lines.append((amount, reference, quantity))
        location = require_location(customer_id)

        super().__init__()
        self.currency, self.customer = currency, customer_id
        self._location = location
        self._lines = lines
        address = Customer._api_retrieve(customer_id).address or {}
        self._customer_details = {
            key: address.get(key) for key in ("city", "line1", "line2", "postal_code", "state")
        }

    @property
    def tax_amount_exclusive(self) -> int:
        return sum(tax_amount(amount, self._location) for amount, _, _ in self._lines)

    @property
    def amount_total(self) -> int:
        return sum(amount for amount, _, _ in self._lines) + self.tax_amount_exclusive

    def _export(self, expand: Any = None) -> dict[str, Any]:
        C = stripe.tax.Calculation
        L = stripe.tax.CalculationLineItem
        lines = [
            shape(
                L,
                {
                    "id": f"{self.id}_li_{index}",
                    "object": "tax.calculation_line_item",
                    "amount": amount,
                    "amount_tax": tax_amount(amount, self._location),
                    "livemode": False,
                    "metadata": {},
                    "product": None,
                    "quantity": quantity,
                    "reference": reference,
                    "tax_behavior": "exclusive",
                    "tax_code": "txcd_10000000",
                },
            )
            for index, (amount, reference, quantity) in enumerate(self._lines)
        ]
        values = {
            "id": self.id,
            "object": self.object,
            "amount_total": self.amount_total,
            "currency": self.currency,
            "customer": self.customer,
            "customer_details": shape(
                C.CustomerDetails,
                {
                    "address": shape(
                        C.CustomerDetails.Address,
                        {"country": self._location.country, **self._customer_details},
                    ),
                    "address_source": "billing",
                    "ip_address": None,
                    "tax_ids": [],
                    "taxability_override": "none",
                },
            ),
            "expires_at": self.created + CALCULATION_TTL_SECONDS,
            "line_items": render_list(f"/v1/tax/calculations/{self.id}/line_items", lines),
            "livemode": False,
            "ship_from_details": None,
            "shipping_cost": None,
            "tax_amount_exclusive": self.tax_amount_exclusive,
            "tax_amount_inclusive": 0,
            "tax_breakdown": [],
            "tax_date": self.created,
        }
        return shape(C, values, expand=expand or ())


def calculation_of_hooks(hooks: Any, amount: int) -> str | None:
    """`hooks[inputs][tax][calculation]` of a PaymentIntent: a calculation whose total is the
    intent's amount, as Stripe requires."""
    if hooks is None:
        return None
    inputs = hooks.get("inputs") if isinstance(hooks, dict) else None
    tax = inputs.get("tax") if isinstance(inputs, dict) else None
    if not isinstance(tax, dict) or set(hooks) != {"inputs"} or set(inputs or {}) != {"tax"}:
        raise param_error("hooks", "The emulator takes hooks[inputs][tax][calculation] only.")
    given = dict(tax)
    calculation_id = as_str("hooks[inputs][tax][calculation]", given.pop("calculation", None))
    reject_unknown(given, parent="hooks[inputs][tax]")
    calculation = TaxCalculation._api_retrieve(calculation_id)
    if calculation.amount_total != amount:
        raise param_error(
            "hooks[inputs][tax][calculation]",
            "The PaymentIntent's amount must equal the tax calculation's amount_total "
            f"({calculation.amount_total}).",
        )
    return calculation.id
