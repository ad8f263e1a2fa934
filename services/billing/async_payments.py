"""Payments the customer completes outside the app, hours or days later: a boleto paid at a bank,
a Pix code, a konbini or OXXO voucher (Stripe's delayed-notification payment methods), or a
bank debit that takes days to clear.

Confirmed with such a method, a PaymentIntent waits `requires_action` with a `next_action` that
shows a voucher (`boleto_display_details`, `pix_display_qr_code`, …) until the customer pays it
(`payment_intent.succeeded`) or it expires (`payment_intent.payment_failed`, back to
`requires_payment_method` with `payment_intent_payment_attempt_expired`); a bank debit waits
`processing`. Nothing is granted meanwhile: a purchase grants once `succeeded` (purchases.py);
the first invoice of a subscription leaves it `incomplete`, which grants nothing
(entitlements.py), and Stripe ends it `incomplete_expired` when it is still unpaid 23 hours on.

Billing keeps the voucher beside the purchase (its PaymentIntent's events carry it: purchases.py)
or beside the invoice (a subscription's PaymentIntent names no invoice: it is found through the
invoice's payments and its attempt recorded as invoice_payments.py records any), and the billing
overview shows the one payment the principal waits for (`pending_payment`).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.auth.principal import Principal
from services.billing.invoices import InvoiceRecord, is_delayed
from services.billing.mirror import Row, mapping, optional, string, unix_time
from services.billing.models import customers, purchases

PROCESSING = "processing"
REQUIRES_ACTION = "requires_action"
# A `next_action` that shows a voucher to pay outside the app, by its type: the payment method,
# and the fields of its hash with the expiry (a Unix time) and Stripe's hosted page.
_VOUCHERS = {
    "boleto_display_details": ("boleto", "expires_at", "hosted_voucher_url"),
    "pix_display_qr_code": ("pix", "expires_at", "hosted_instructions_url"),
    "konbini_display_details": ("konbini", "expires_at", "hosted_voucher_url"),
    "multibanco_display_details": ("multibanco", "expires_at", "hosted_voucher_url"),
    "oxxo_display_details": ("oxxo", "expires_after", "hosted_voucher_url"),
}


@dataclass(frozen=True, slots=True)
class Voucher:
    """What a payment waits for outside the app: its method, expiry and hosted page."""

    method: str | None
    expires_at: datetime | None
    url: str | None

    def row(self) -> Row:
        """The columns that record it, beside an invoice's attempt or a purchase."""
        return {
            "payment_method_type": self.method,
            "payment_expires_at": self.expires_at,
            "payment_voucher_url": self.url,
        }


NO_VOUCHER = Voucher(None, None, None)


def voucher_of(intent: dict[str, Any]) -> Voucher:
    """The voucher a PaymentIntent object waits on (its `next_action`), or for a `processing`
    one its method if the PaymentIntent was fetched with its payment method; else NO_VOUCHER."""
    action = optional(mapping, intent.get("next_action")) or {}
    kind = action.get("type")
    if isinstance(kind, str) and kind in _VOUCHERS:
        method, expiry, url = _VOUCHERS[kind]
        details = optional(mapping, action.get(kind)) or {}
        return Voucher(
            method=method,
            expires_at=optional(unix_time, details.get(expiry)),
            url=optional(string, details.get(url)),
        )
    payment_method = intent.get("payment_method")
    if intent.get("status") == PROCESSING and isinstance(payment_method, dict):
        return Voucher(optional(string, payment_method.get("type")), None, None)
    return NO_VOUCHER


# The `last_payment_error.code` of a voucher that expired unpaid.
ATTEMPT_EXPIRED = "payment_intent_payment_attempt_expired"


def waits_outside(intent: dict[str, Any]) -> bool:
    """Whether a PaymentIntent object waits for a payment made outside the app, or its voucher
    just expired unpaid (what billing records beside the invoice it pays)."""
    error = optional(mapping, intent.get("last_payment_error")) or {}
    return (
        is_delayed(optional(string, intent.get("status")), voucher_of(intent).method)
        or error.get("code") == ATTEMPT_EXPIRED
    )


@dataclass(frozen=True, slots=True)
class PendingPaymentRecord:
    """The payment the principal waits for (the billing overview's `pending_payment`)."""

    method: str  # boleto, pix, …; empty when Stripe did not say (a debit processing)
    status: str  # requires_action (a voucher to pay) or processing
    amount: int
    currency: str
    expires_at: datetime | None
    hosted_voucher_url: str | None
    payment_intent_id: str
    invoice_id: str | None  # the subscription invoice it pays; None: a one-time purchase


def pending_invoice_payment(invoice: InvoiceRecord, now: datetime) -> PendingPaymentRecord | None:
    """The delayed payment an open invoice waits for, if its last attempt is one whose voucher
    has not expired by `now`."""
    attempt = invoice.last_payment
    if attempt is None or not is_delayed(attempt.status, attempt.method):
        return None
    if attempt.expires_at is not None and attempt.expires_at <= now:
        return None  # Stripe is about to say it expired
    return PendingPaymentRecord(
        method=attempt.method or "",
        status=attempt.status,
        amount=invoice.amount_remaining,
        currency=invoice.currency,
        expires_at=attempt.expires_at,
        hosted_voucher_url=attempt.voucher_url,
        payment_intent_id=attempt.payment_intent_id or "",
        invoice_id=invoice.id,
    )


async def pending_purchase(
    conn: AsyncConnection, principal: Principal, now: datetime
) -> PendingPaymentRecord | None:
    """The principal's newest one-time purchase that waits for a payment made outside the app
    (a voucher not yet expired, or processing)."""
    p = purchases.c
    query = (
        select(
            p.id,
            p.status,
            p.amount,
            p.currency,
            p.payment_method_type,
            p.payment_expires_at,
            p.payment_voucher_url,
        )
        .join(customers, customers.c.stripe_customer_id == p.stripe_customer_id)
        .where(
            customers.c.principal == principal.key,
            (p.status == PROCESSING)
            | ((p.status == REQUIRES_ACTION) & p.payment_method_type.is_not(None)),
            p.payment_expires_at.is_(None) | (p.payment_expires_at > now),
        )
        .order_by(p.created.desc(), p.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return PendingPaymentRecord(
        method=row.payment_method_type or "",
        status=row.status,
        amount=row.amount,
        currency=row.currency,
        expires_at=row.payment_expires_at,
        hosted_voucher_url=row.payment_voucher_url,
        payment_intent_id=row.id,
        invoice_id=None,
    )
