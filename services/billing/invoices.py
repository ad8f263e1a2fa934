"""Invoices: mirrored from Stripe's invoice objects."""

from functools import partial
from operator import attrgetter
from typing import Any

from services.billing.mirror import (
    Mirror,
    Row,
    integer,
    mapping,
    optional,
    reference,
    string,
    unix_time,
    upsert,
)
from services.billing.models import invoices


def _subscription_of(invoice: dict[str, Any]) -> object:
    """The subscription reference: top level before API version 2025-03-31, `parent` since."""
    if invoice.get("subscription") is not None:
        return invoice["subscription"]
    parent = optional(mapping, invoice.get("parent")) or {}
    details = optional(mapping, parent.get("subscription_details")) or {}
    return details.get("subscription")


def invoice_row(invoice: dict[str, Any]) -> Row:
    """The `billing.invoices` row for a Stripe invoice object (amounts in minor units)."""
    return {
        "id": string(invoice["id"]),
        "stripe_customer_id": reference(invoice["customer"]),
        "subscription_id": optional(reference, _subscription_of(invoice)),
        "status": optional(string, invoice.get("status")),
        "currency": string(invoice["currency"]),
        "amount_due": integer(invoice["amount_due"]),
        "amount_paid": integer(invoice["amount_paid"]),
        "amount_remaining": integer(invoice["amount_remaining"]),
        "total": integer(invoice["total"]),
        "hosted_invoice_url": optional(string, invoice.get("hosted_invoice_url")),
        "invoice_pdf": optional(string, invoice.get("invoice_pdf")),
        "number": optional(string, invoice.get("number")),
        "period_start": optional(unix_time, invoice.get("period_start")),
        "period_end": optional(unix_time, invoice.get("period_end")),
        "created": unix_time(invoice["created"]),
    }


INVOICES = Mirror(
    object_type="invoice",
    table=invoices,
    key=invoices.c.id,
    row=invoice_row,
    service=attrgetter("v1.invoices"),
    write=partial(upsert, table=invoices, touched="updated_at"),
)
