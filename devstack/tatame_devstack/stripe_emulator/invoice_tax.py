"""Stripe Tax on invoices (`automatic_tax` of their subscription): the tax of each line on its
amount less its share of the invoice's discounts, at the rate of the customer's location, which
is fixed once the invoice is finalized (as Stripe fixes an invoice's tax then)."""

from typing import Any

import stripe
from localstripe.resources import Invoice, InvoiceLineItem, Subscription

from tatame_devstack.stripe_emulator.discounts import invoice_discounts
from tatame_devstack.stripe_emulator.tax import (
    Location,
    automatic_tax_of,
    customer_location,
    tax_amount,
    tax_entries,
    taxable_amounts,
)

_LOCALSTRIPE_TAX = Invoice.tax.fget
_UNLOCATED = "unlocated"


def automatically_taxed(invoice: Invoice) -> bool:
    """Whether Stripe Tax computes an invoice's tax: its subscription's `automatic_tax`."""
    if invoice.subscription is None:
        return False
    return bool(getattr(Subscription._api_retrieve(invoice.subscription), "_automatic_tax", False))


def _taxable_amounts(invoice: Invoice) -> list[int]:
    """What is taxed of each of the invoice's lines (their order), their discount shares off."""
    discount = sum(amount for _, amount in invoice_discounts(invoice))
    return taxable_amounts([line.amount for line in invoice.lines._list], discount)


def _invoice_location(invoice: Invoice) -> Location | None:
    """Where Stripe Tax places the invoice's customer: fixed once the invoice is finalized, as
    Stripe fixes an invoice's tax then (a later address, or the customer's deletion, leaves it)."""
    kept = getattr(invoice, "_tax_location", None)
    if kept is not None:
        return None if kept == _UNLOCATED else kept
    location = customer_location(invoice.customer)
    if not invoice._draft:
        invoice._tax_location = location or _UNLOCATED
    return location


def _invoice_tax(invoice: Invoice) -> int:
    """The invoice's tax: Stripe Tax's by its customer's location when automatic."""
    if not automatically_taxed(invoice):
        return int(_LOCALSTRIPE_TAX(invoice))
    location = _invoice_location(invoice)
    return sum(tax_amount(taxable, location) for taxable in _taxable_amounts(invoice))


def line_taxes(line: InvoiceLineItem) -> list[dict[str, Any]]:
    """A line's `taxes`."""
    invoice = None if line.invoice is None else Invoice._api_retrieve(line.invoice)
    if invoice is None or not automatically_taxed(invoice):
        return []
    index = next((i for i, kept in enumerate(invoice.lines._list) if kept.id == line.id), None)
    taxable = line.amount if index is None else _taxable_amounts(invoice)[index]
    return tax_entries(stripe.InvoiceLineItem.Tax, taxable, _invoice_location(invoice))


def total_taxes(invoice: Invoice) -> list[dict[str, Any]]:
    """An invoice's `total_taxes`: the sum of its lines' taxes."""
    if not automatically_taxed(invoice):
        return []
    taxable = sum(_taxable_amounts(invoice))
    return tax_entries(
        stripe.Invoice.TotalTax, taxable, _invoice_location(invoice), amount=invoice.tax
    )


def invoice_automatic_tax(invoice: Invoice) -> dict[str, Any]:
    taxed = automatically_taxed(invoice)
    return automatic_tax_of(
        stripe.Invoice.AutomaticTax,
        enabled=taxed,
        located=taxed and _invoice_location(invoice) is not None,
    )


def extend_invoice_tax() -> None:
    """localstripe's invoice tax, Stripe Tax's for an automatically taxed invoice."""
    Invoice.tax = property(_invoice_tax)
