"""Stripe Tax (`BILLING_AUTOMATIC_TAX`): what billing sends Stripe so that it taxes, and what it
reads back.

Stripe Tax taxes by the customer's location, its billing address here: outside the US a
country is enough, the US needs a ZIP code, Canada a province or postal code. The app sends it
with SetTaxLocation (validated by Stripe at once: `customer_tax_location_invalid` when Stripe
cannot use it), or the customer types it on the Checkout page (saved to the customer). With the
setting on:
- subscriptions (PaymentSheet) are created with `automatic_tax[enabled]`: their invoices carry
  Stripe's tax, and a start for a customer Stripe cannot locate is refused with
  `customer_tax_location_invalid`;
- Checkout Sessions collect what Stripe needs (`checkout_tax_params`);
- one-time payments are taxed through Stripe's Tax Calculations API: the PaymentIntent's amount
  is the calculation's total and names it in `hooks[inputs][tax][calculation]`, so Stripe
  records the tax transaction when it succeeds (a PaymentIntent alone is never taxed);
- invoice previews ask for `automatic_tax` too.
With it off, no tax field is sent anywhere and nothing changes.
"""

from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from stripe.params import CustomerUpdateParams
from stripe.params.checkout import SessionCreateParams

from services.auth.principal import Principal
from services.billing.customers import require_customer
from services.billing.errors import InvalidArgument
from services.billing.idempotency import RequestKey, stripe_options
from services.billing.mirror import integer, mapping, optional, string
from services.billing.settings import BillingRules
from services.billing.stripe_errors import translated_stripe_errors

MAX_FIELD_LENGTH = 200
ADDRESS_FIELDS = ("country", "postal_code", "state", "city", "line1", "line2")


@dataclass(frozen=True, slots=True)
class TaxLocation:
    """A customer's billing address, and what Stripe Tax makes of it (with the setting on):
    `supported`, `not_collecting` (located where the account collects no tax),
    `unrecognized_location`; empty with the setting off."""

    country: str = ""
    postal_code: str = ""
    state: str = ""
    city: str = ""
    line1: str = ""
    line2: str = ""
    automatic_tax: str = ""


def checked_address(location: TaxLocation) -> dict[str, str]:
    """The address Stripe is sent: a two-letter country (upper case) and the fields given."""
    country = location.country.strip().upper()
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        raise InvalidArgument("country must be a two-letter ISO country code")
    address = {"country": country}
    for name in ADDRESS_FIELDS[1:]:
        value = getattr(location, name).strip()
        if len(value) > MAX_FIELD_LENGTH:
            raise InvalidArgument(f"{name} must be at most {MAX_FIELD_LENGTH} characters")
        if value:
            address[name] = value
    return address


def _location(customer: dict[str, Any], *, automatic_tax: bool) -> TaxLocation:
    address = optional(mapping, customer.get("address")) or {}
    tax = optional(mapping, customer.get("tax")) or {}
    return TaxLocation(
        **{name: optional(string, address.get(name)) or "" for name in ADDRESS_FIELDS},
        automatic_tax=string(tax["automatic_tax"]) if automatic_tax and tax else "",
    )


async def tax_location(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    principal: Principal,
) -> TaxLocation:
    """The principal's customer's billing address in Stripe, and Stripe Tax's view of it."""
    customer = await require_customer(engine=engine, principal=principal)
    async with translated_stripe_errors("retrieve the customer"):
        found = await stripe_client.v1.customers.retrieve_async(
            customer.stripe_customer_id, params={"expand": ["tax"]} if rules.automatic_tax else {}
        )
    return _location(found.to_dict(), automatic_tax=rules.automatic_tax)


async def set_tax_location(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    principal: Principal,
    location: TaxLocation,
    idempotency: RequestKey | None = None,
) -> TaxLocation:
    """Save the principal's billing address in Stripe. With Stripe Tax on, Stripe validates it
    at once (`tax[validate_location]=immediately`): one it cannot locate is refused with
    `customer_tax_location_invalid` and not saved."""
    address = checked_address(location)
    customer = await require_customer(engine=engine, principal=principal)
    params: CustomerUpdateParams = {
        # Every field, so that one left out is cleared rather than kept from before.
        "address": {
            "country": address["country"],
            "postal_code": address.get("postal_code", ""),
            "state": address.get("state", ""),
            "city": address.get("city", ""),
            "line1": address.get("line1", ""),
            "line2": address.get("line2", ""),
        }
    }
    if rules.automatic_tax:
        params["tax"] = {"validate_location": "immediately"}
        params["expand"] = ["tax"]
    async with translated_stripe_errors("save the billing address"):
        updated = await stripe_client.v1.customers.update_async(
            customer.stripe_customer_id,
            params=params,
            options=stripe_options(idempotency, "tax-location"),
        )
    return _location(updated.to_dict(), automatic_tax=rules.automatic_tax)


def checkout_tax_params(rules: BillingRules) -> SessionCreateParams:
    """What a Checkout Session for an existing customer sends with Stripe Tax on: automatic
    tax, the billing address required on the page and saved to the customer (Stripe taxes by
    it), tax ids collected (a business's, which Stripe puts on invoices and may reverse-charge
    by), which needs the name saved to the customer too. Nothing with it off."""
    if not rules.automatic_tax:
        return {}
    return {
        "automatic_tax": {"enabled": True},
        "billing_address_collection": "required",
        "customer_update": {"address": "auto", "name": "auto"},
        "tax_id_collection": {"enabled": True},
    }


def invoice_tax(invoice: dict[str, Any]) -> int:
    """The tax of a Stripe invoice (or preview), in minor units: its `total_taxes`."""
    return sum(integer(entry["amount"]) for entry in invoice.get("total_taxes") or [])


def automatic_tax_status(invoice: dict[str, Any]) -> str | None:
    """Stripe Tax's status on an invoice (`complete`, `requires_location_inputs`, `failed`), or
    None when the invoice is not automatically taxed."""
    automatic = optional(mapping, invoice.get("automatic_tax")) or {}
    if not automatic.get("enabled"):
        return None
    return optional(string, automatic.get("status"))


@dataclass(frozen=True, slots=True)
class TaxedAmount:
    amount: int  # what is charged: the price and its tax
    tax: int
    calculation_id: str | None  # the Stripe Tax calculation the PaymentIntent names


async def taxed_amount(
    *,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    stripe_customer_id: str,
    currency: str,
    amount: int,
    quantity: int,
    reference: str,
    idempotency: RequestKey | None,
) -> TaxedAmount:
    """What a one-time payment of `amount` (exclusive of tax) charges: with Stripe Tax on, the
    total of a tax calculation for the customer; `amount` untaxed with it off."""
    if not rules.automatic_tax:
        return TaxedAmount(amount=amount, tax=0, calculation_id=None)
    async with translated_stripe_errors("calculate the tax"):
        calculation = await stripe_client.v1.tax.calculations.create_async(
            params={
                "currency": currency,
                "customer": stripe_customer_id,
                "line_items": [
                    {
                        "amount": amount,
                        "quantity": quantity,
                        "reference": reference,
                        "tax_behavior": "exclusive",
                    }
                ],
            },
            options=stripe_options(idempotency, "tax-calculation"),
        )
    return TaxedAmount(
        amount=calculation.amount_total,
        tax=calculation.tax_amount_exclusive,
        calculation_id=calculation.id,
    )
