"""Prices in several currencies (`currency_options`) and Stripe's rule that a customer bills in
one currency.

A price's `currency_options` map other currencies to that price's amount in them (per-unit
prices: `unit_amount` and `tax_behavior`). Stripe sends the map only when the request expands
it, with the price's own currency in it too. A subscription or Checkout Session made with
`currency=brl` bills the option's amount: its item carries a copy of the price's Plan in that
currency (`catalog.plan_in`; the stored Plan stays in the price's own currency). Once a
customer has a finalized invoice its `currency` is set, and Stripe refuses a subscription in
another one.
"""

from typing import Any

import stripe
from localstripe.errors import UserError

from tatame_devstack.stripe_emulator.params import (
    as_currency,
    as_int,
    as_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.render import shape
from tatame_devstack.stripe_emulator.state import stored

TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")


def parse_currency_options(
    value: Any, *, currency: str, per_unit: bool
) -> dict[str, dict[str, Any]]:
    """`currency_options` of a create or update: by currency, `unit_amount` and
    `tax_behavior` (the emulator takes options of per-unit prices only)."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise param_error("currency_options", "Invalid currency_options: expected a hash")
    if not per_unit:
        raise param_error(
            "currency_options", "The emulator takes currency_options of per-unit prices only."
        )
    options: dict[str, dict[str, Any]] = {}
    for key, option in value.items():
        param = f"currency_options[{key}]"
        option_currency = as_currency(key)
        if option_currency == currency:
            raise param_error(param, f"The price's own currency ({currency}) is not an option.")
        params = dict(option) if isinstance(option, dict) else {}
        if "unit_amount" not in params:
            raise param_error(
                f"{param}[unit_amount]", f"Missing required param: {param}[unit_amount]."
            )
        options[option_currency] = {
            "unit_amount": as_int(f"{param}[unit_amount]", params.pop("unit_amount"), minimum=0),
            "tax_behavior": as_str(
                f"{param}[tax_behavior]",
                params.pop("tax_behavior", "unspecified"),
                choices=TAX_BEHAVIORS,
            ),
        }
        reject_unknown(params, parent=param)
    return options


def render_currency_options(price: Any) -> dict[str, dict[str, Any]]:
    """A price's `currency_options` as Stripe renders them when expanded: its own currency and
    each option."""
    own = {"unit_amount": price.unit_amount, "tax_behavior": price.tax_behavior}
    options = {price.currency: own, **getattr(price, "currency_options", {})}
    return {
        currency: shape(
            stripe.Price.CurrencyOptions,
            {
                "custom_unit_amount": None,
                "tax_behavior": option["tax_behavior"],
                "tiers": None,
                "unit_amount": option["unit_amount"],
                "unit_amount_decimal": None
                if option["unit_amount"] is None
                else str(option["unit_amount"]),
            },
        )
        for currency, option in sorted(options.items())
    }


def customer_currency(customer_id: str) -> str | None:
    """The customer's currency: its first finalized invoice's, as Stripe sets it (None before)."""
    invoices = [
        invoice
        for invoice in stored("invoice")
        if invoice.customer == customer_id and invoice.status != "draft"
    ]
    return invoices[0].currency if invoices else None


def check_customer_currency(customer_id: str, currency: str) -> None:
    """Stripe's refusal of a subscription in another currency than the customer's."""
    current = customer_currency(customer_id)
    if current is not None and current != currency:
        raise UserError(
            400,
            "You cannot combine currencies on a single customer. This customer has an active "
            "subscription, subscription schedule, discount, quote, or invoice item with "
            f"currency {current}.",
        )
