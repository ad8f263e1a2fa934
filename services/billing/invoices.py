"""Invoices: mirrored from Stripe's invoice objects (and, beside them, how the last attempt to pay
an open one ended: invoice_payments.py), listed per principal."""

from dataclasses import dataclass, fields
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.auth.principal import Principal
from services.billing.discounts import DiscountRecord, discount_ids, discount_records, in_order
from services.billing.errors import NotFound
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
from services.billing.models import customers, invoices
from services.billing.payment_failures import failure_reason
from services.billing.tax import automatic_tax_status, invoice_tax
from services.common.errors import ErrorReason

MAX_LISTED = 100
# What an open invoice's payment waits for: the card holder's authentication (3-D Secure),
# another card (the charge was declined), or a payment made outside the app (a boleto or Pix
# voucher issued, a bank debit processing: async_payments.py).
PaymentAction = Literal["authenticate", "pay", "wait"]


def is_delayed(attempt_status: str | None, method: str | None) -> bool:
    """Whether an attempt waits for a payment made outside the app: `processing`, or
    `requires_action` with a voucher of `method` (a card's is 3-D Secure, which the app
    answers)."""
    return attempt_status == "processing" or (
        attempt_status == "requires_action" and method is not None
    )


def payment_action(attempt_status: str | None, method: str | None = None) -> PaymentAction:
    """What an open invoice's payment waits for, by its last attempt's PaymentIntent status
    and voucher method: `wait` for a delayed payment, `authenticate` when the bank asked for
    the card holder (`requires_action`), else `pay`."""
    if is_delayed(attempt_status, method):
        return "wait"
    return "authenticate" if attempt_status == "requires_action" else "pay"


def _subscription_of(invoice: dict[str, Any]) -> object:
    """The subscription an invoice bills, named under `parent` (since API version 2025-03-31)."""
    parent = optional(mapping, invoice["parent"]) or {}
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
        "total_tax": invoice_tax(invoice),
        "total_excluding_tax": _total_excluding_tax(invoice),
        "automatic_tax_status": automatic_tax_status(invoice),
        **_discounts_of(invoice),
    }


def _total_excluding_tax(invoice: dict[str, Any]) -> int:
    """Stripe's `total_excluding_tax` (null on some old invoices: the total less its tax)."""
    excluding = optional(integer, invoice.get("total_excluding_tax"))
    return integer(invoice["total"]) - invoice_tax(invoice) if excluding is None else excluding


def _discounts_of(invoice: dict[str, Any]) -> Row:
    """Which discounts an invoice applied, and what each took off (Stripe's
    `total_discount_amounts`)."""
    amounts = [
        {"discount": reference(entry["discount"]), "amount": integer(entry["amount"])}
        for entry in (invoice.get("total_discount_amounts") or [])
        if mapping(entry).get("discount") is not None
    ]
    return {
        "discount_ids": discount_ids(invoice),
        "discount_amounts": amounts,
        "total_discount_amount": sum(entry["amount"] for entry in amounts),
    }


INVOICES = Mirror(
    object_type="invoice",
    table=invoices,
    key=invoices.c.id,
    row=invoice_row,
    service=attrgetter("v1.invoices"),
    write=partial(upsert, table=invoices, touched="updated_at"),
)


@dataclass(frozen=True, slots=True)
class PaymentAttemptRecord:
    """How the last attempt to pay an open invoice ended (its PaymentIntent)."""

    status: str
    reason: ErrorReason | None
    error_code: str | None
    decline_code: str | None
    error_message: str | None
    payment_intent_id: str | None = None
    # A payment made outside the app: its method (boleto, pix, …), expiry and hosted voucher.
    method: str | None = None
    expires_at: datetime | None = None
    voucher_url: str | None = None


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    id: str
    subscription_id: str | None
    status: str | None
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    total: int
    number: str | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    created: datetime
    period_start: datetime | None
    period_end: datetime | None
    total_discount_amount: int
    # Stripe Tax (services/billing/tax.py): the tax in `total`, the total without it, and its
    # status on the invoice (None when not automatically taxed).
    total_tax: int
    total_excluding_tax: int
    automatic_tax_status: str | None
    # The discounts applied (those whose details the mirror holds), each with its amount.
    discounts: tuple[DiscountRecord, ...] = ()
    # While the invoice is open: how its last payment attempt ended, if one was made.
    last_payment: PaymentAttemptRecord | None = None


_RECORD_COLUMNS = [
    invoices.c[f.name] for f in fields(InvoiceRecord) if f.name not in ("discounts", "last_payment")
]
_ATTEMPT_COLUMNS = (
    invoices.c.payment_status,
    invoices.c.payment_error_code,
    invoices.c.payment_decline_code,
    invoices.c.payment_error_message,
    invoices.c.payment_intent_id,
    invoices.c.payment_method_type,
    invoices.c.payment_expires_at,
    invoices.c.payment_voucher_url,
)


def _select_records() -> Select[Any]:
    return select(
        *_RECORD_COLUMNS, invoices.c.discount_ids, invoices.c.discount_amounts, *_ATTEMPT_COLUMNS
    ).join(customers, customers.c.stripe_customer_id == invoices.c.stripe_customer_id)


def _last_payment(values: dict[str, Any], status: str | None) -> PaymentAttemptRecord | None:
    """The attempt's columns of a row (taken out of `values`) as a record, for an open invoice;
    once it is paid, void or uncollectible, its attempts are history."""
    attempt = {column.name: values.pop(column.name) for column in _ATTEMPT_COLUMNS}
    if status != "open" or attempt["payment_status"] is None:
        return None
    return PaymentAttemptRecord(
        status=attempt["payment_status"],
        reason=failure_reason(attempt["payment_error_code"], attempt["payment_decline_code"]),
        error_code=attempt["payment_error_code"],
        decline_code=attempt["payment_decline_code"],
        error_message=attempt["payment_error_message"],
        payment_intent_id=attempt["payment_intent_id"],
        method=attempt["payment_method_type"],
        expires_at=attempt["payment_expires_at"],
        voucher_url=attempt["payment_voucher_url"],
    )


async def _records(conn: AsyncConnection, query: Select[Any]) -> list[InvoiceRecord]:
    rows = (await conn.execute(query)).all()
    known = await discount_records(conn, (i for row in rows for i in row.discount_ids))
    records = []
    for row in rows:
        values = dict(row._mapping)
        ids = values.pop("discount_ids")
        amounts = {entry["discount"]: entry["amount"] for entry in values.pop("discount_amounts")}
        last_payment = _last_payment(values, values["status"])
        records.append(
            InvoiceRecord(
                **values, discounts=in_order(ids, known, amounts), last_payment=last_payment
            )
        )
    return records


async def list_invoices(*, engine: AsyncEngine, principal: Principal) -> list[InvoiceRecord]:
    """The principal's invoices of some amount (the newest MAX_LISTED), newest first, from the
    mirror. An invoice of total 0 (the one with which Stripe starts a trial) is mirrored but not
    listed: nothing was charged or is due on it, and the trial it records is the subscription's
    `trial_start`/`trial_end`, which the app already shows."""
    query = (
        _select_records()
        .where(customers.c.principal == principal.key, invoices.c.total != 0)
        .order_by(invoices.c.created.desc(), invoices.c.id.desc())
        .limit(MAX_LISTED)
    )
    async with engine.connect() as conn:
        return await _records(conn, query)


async def principal_invoice(
    conn: AsyncConnection, principal: Principal, invoice_id: str
) -> InvoiceRecord:
    """One of the principal's invoices, from the mirror; NotFound for anyone else's."""
    query = _select_records().where(
        customers.c.principal == principal.key, invoices.c.id == invoice_id
    )
    found = await _records(conn, query)
    if not found:
        raise NotFound(f"no invoice {invoice_id!r} for this account")
    return found[0]


async def awaiting_payment(
    conn: AsyncConnection, principal: Principal, subscription_id: str
) -> InvoiceRecord | None:
    """The newest open invoice of the principal's subscription `subscription_id` with an amount
    left to pay (its `last_payment` says what the payment waits for: `requires_action`, the card
    holder's authentication). An ended subscription's invoice is not one: Stripe leaves it open
    when the subscription is canceled (an abandoned PaymentSheet's, one left past_due) but no
    longer collects it, and paying it would give nothing back."""
    query = (
        _select_records()
        .where(
            customers.c.principal == principal.key,
            invoices.c.subscription_id == subscription_id,
            invoices.c.status == "open",
            invoices.c.amount_remaining > 0,
        )
        .order_by(invoices.c.created.desc(), invoices.c.id.desc())
        .limit(1)
    )
    found = await _records(conn, query)
    return found[0] if found else None
