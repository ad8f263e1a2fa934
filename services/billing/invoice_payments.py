"""Paying an open invoice (PayInvoice), and how the last attempt to pay an invoice ended.

Since API version 2025-03-31 an invoice names its PaymentIntent only through its payments
(InvoicePayment objects), and neither the invoice nor its events say how an attempt ended:
the PaymentIntent does (`status`, `last_payment_error`). Billing therefore fetches it (the
invoice's default payment, else its newest) when an event says an attempt failed or waits for
the card holder (`invoice.payment_failed`, `invoice.payment_action_required`: events.py) and
after PayInvoice's own attempt, and writes it beside the invoice's row (`record_attempt`).
The invoices' reads show it while the invoice is open (invoices.py).

PayInvoice charges as the customer is present (`off_session=false`): a card that asks for
3-D Secure leaves the PaymentIntent `requires_action`, and the answer carries its client secret
for the app to confirm; once Stripe reports the invoice paid (`invoice.paid`), the webhook path
mirrors it and Stripe's `customer.subscription.updated` makes the subscription active again.
"""

from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from stripe.params import InvoicePayParams

from services.auth.principal import Principal
from services.billing.async_payments import NO_VOUCHER, Voucher, voucher_of
from services.billing.errors import Conflict, PaymentFailed
from services.billing.idempotency import RequestKey, stripe_options
from services.billing.invoices import INVOICES, InvoiceRecord, principal_invoice
from services.billing.mirror import (
    Row,
    answered_at,
    integer,
    mapping,
    optional,
    reference,
    string,
    write_answer,
)
from services.billing.models import invoices
from services.billing.ownership import owned
from services.billing.payment_failures import failure_reason
from services.billing.stripe_errors import translated_stripe_errors
from services.common.errors import ErrorReason

PAID = "paid"
REQUIRES_ACTION = "requires_action"
PROCESSING = "processing"


@dataclass(frozen=True, slots=True)
class PaymentAttempt:
    """An invoice's PaymentIntent as Stripe has it after an attempt to pay it."""

    payment_intent_id: str
    status: str
    client_secret: str
    error_code: str | None
    decline_code: str | None
    error_message: str | None
    # What a delayed payment waits for (a boleto or Pix voucher): async_payments.py.
    voucher: Voucher = NO_VOUCHER

    def row(self) -> Row:
        """The invoice's columns that record it (never the client secret)."""
        return {
            "payment_intent_id": self.payment_intent_id,
            "payment_status": self.status,
            "payment_error_code": self.error_code,
            "payment_decline_code": self.decline_code,
            "payment_error_message": self.error_message,
            **self.voucher.row(),
        }


def attempt_of(intent: dict[str, Any]) -> PaymentAttempt:
    """A PaymentIntent object (a dict) as an attempt."""
    error = optional(mapping, intent.get("last_payment_error")) or {}
    return PaymentAttempt(
        payment_intent_id=string(intent["id"]),
        status=string(intent["status"]),
        client_secret=optional(string, intent.get("client_secret")) or "",
        error_code=optional(string, error.get("code")),
        decline_code=optional(string, error.get("decline_code")),
        error_message=optional(string, error.get("message")),
        voucher=voucher_of(intent),
    )


def _intent_of(payments: list[dict[str, Any]]) -> str | None:
    """The PaymentIntent of an invoice's default payment, else of its newest one."""
    by_intent = [
        payment
        for payment in payments
        if (optional(mapping, payment.get("payment")) or {}).get("type") == "payment_intent"
    ]
    if not by_intent:
        return None
    chosen = max(by_intent, key=lambda p: (bool(p.get("is_default")), integer(p["created"])))
    return reference(chosen["payment"]["payment_intent"])


async def payment_attempt(
    stripe_client: stripe.StripeClient, invoice_id: str
) -> PaymentAttempt | None:
    """How the last attempt to pay the invoice ended, from Stripe; None before any."""
    async with translated_stripe_errors(f"list the payments of invoice {invoice_id}"):
        listed = await stripe_client.v1.invoice_payments.list_async(
            params={"invoice": invoice_id, "limit": 10}
        )
    intent_id = _intent_of([payment.to_dict() for payment in listed.data])
    if intent_id is None:
        return None
    async with translated_stripe_errors(f"retrieve payment intent {intent_id}"):
        intent = await stripe_client.v1.payment_intents.retrieve_async(
            intent_id,
            params={"expand": ["payment_method"]},  # the method of one processing
        )
    return attempt_of(intent.to_dict())


async def invoice_of_intent(stripe_client: stripe.StripeClient, intent_id: str) -> str | None:
    """The invoice a PaymentIntent pays (through the invoice's payments), if any: since API
    version 2025-03-31 a PaymentIntent does not name it."""
    async with translated_stripe_errors(f"list the invoice payments of {intent_id}"):
        listed = await stripe_client.v1.invoice_payments.list_async(
            params={"payment": {"type": "payment_intent", "payment_intent": intent_id}, "limit": 1}
        )
    return next((reference(payment.invoice) for payment in listed.data), None)


async def record_attempt(conn: AsyncConnection, invoice_id: str, attempt: PaymentAttempt) -> None:
    """Write how the invoice's last attempt ended beside its row (fetched state: the newest)."""
    await conn.execute(update(invoices).where(invoices.c.id == invoice_id).values(attempt.row()))


@dataclass(frozen=True, slots=True)
class InvoicePayment:
    """What PayInvoice answers: the invoice, and `PAID`, `REQUIRES_ACTION` (confirm with the
    client secret) or `PROCESSING`."""

    invoice: InvoiceRecord
    status: str
    payment_intent_id: str
    client_secret: str


async def _pay(
    stripe_client: stripe.StripeClient,
    invoice_id: str,
    params: InvoicePayParams,
    idempotency: RequestKey | None,
) -> stripe.Invoice:
    """Ask Stripe to pay the invoice; the invoice as it is after the attempt, paid or not."""
    async with translated_stripe_errors("pay the invoice"):
        try:
            return await stripe_client.v1.invoices.pay_async(
                invoice_id, params=params, options=stripe_options(idempotency, "pay-invoice")
            )
        except stripe.CardError:  # declined, or waiting for authentication: the intent says
            return await stripe_client.v1.invoices.retrieve_async(invoice_id)


async def pay_invoice(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    invoice_id: str,
    payment_method_id: str,
    idempotency: RequestKey | None = None,
) -> InvoicePayment:
    """Pay one of the principal's open invoices now, with one of its saved payment methods or
    (none named) the one Stripe charges; NotFound for anyone else's invoice or card,
    `invoice_not_open`, or PaymentFailed with the reason of a decline."""
    found = await owned(
        stripe_client.v1.invoices.retrieve_async,
        invoice_id,
        engine=engine,
        principal=principal,
        kind="invoice",
    )
    params: InvoicePayParams = {"off_session": False}
    if payment_method_id:
        await owned(
            stripe_client.v1.payment_methods.retrieve_async,
            payment_method_id,
            engine=engine,
            principal=principal,
            kind="payment method",
            id_field="payment_method",
        )
        params["payment_method"] = payment_method_id
    status = found.data.get("status")
    if status != "open":
        raise Conflict(
            f"invoice {invoice_id!r} is {status}: only an open invoice can be paid",
            reason=ErrorReason.INVOICE_NOT_OPEN,
        )
    invoice = await _pay(stripe_client, invoice_id, params, idempotency)
    paid = invoice.status == PAID
    attempt = None if paid else await payment_attempt(stripe_client, invoice_id)
    async with engine.begin() as conn:
        await write_answer(
            conn,
            mirror=INVOICES,
            stripe_client=stripe_client,
            obj=invoice.to_dict(),
            answered=answered_at(invoice),
        )
        if attempt is not None:
            await record_attempt(conn, invoice_id, attempt)
        record = await principal_invoice(conn, principal, invoice_id)
    if paid:
        return InvoicePayment(record, PAID, "", "")
    if attempt is not None and attempt.status in (REQUIRES_ACTION, PROCESSING):
        secret = attempt.client_secret if attempt.status == REQUIRES_ACTION else ""
        return InvoicePayment(record, attempt.status, attempt.payment_intent_id, secret)
    reason = None if attempt is None else failure_reason(attempt.error_code, attempt.decline_code)
    if attempt is None or reason is None:
        raise Conflict(f"Stripe did not pay invoice {invoice_id!r}; it is still open")
    raise PaymentFailed(attempt.error_message or "the payment was declined", reason=reason)
