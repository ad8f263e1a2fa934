"""The payment a plan change waits for.

A change that bills now is made with `payment_behavior=pending_if_incomplete`: Stripe invoices it
and charges the invoice at once; when the charge is declined or the bank asks the card holder to
authenticate, the subscription keeps its items and records the change as its `pending_update`,
and its `latest_invoice` is the open invoice that, once paid (with the client secret of its
payment, in PaymentSheet), applies the change. Stripe then clears `pending_update` and announces
the subscription's new items (`customer.subscription.updated`); unpaid, the change expires and
the invoice is voided.
"""

from dataclasses import dataclass

import stripe
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.errors import StripeRejected
from services.billing.invoice_payments import PaymentAttempt, payment_attempt, record_attempt
from services.billing.invoices import INVOICES, PaymentAction, invoice_row, payment_action
from services.billing.mirror import Row, answered_at, apply_object, integer, reference, string
from services.billing.payment_failures import failure_reason
from services.billing.stripe_errors import translated_stripe_errors
from services.common.errors import ErrorReason


@dataclass(frozen=True, slots=True)
class PendingPayment:
    """An open invoice's payment that did not go through, and what it waits for."""

    invoice_id: str
    # `authenticate`: the bank asks the card holder (3-D Secure); `pay`: declined, pay again
    # (another card).
    action: PaymentAction
    # Why it was declined (`pay` only).
    decline_reason: ErrorReason | None
    # Confirms the payment in PaymentSheet (authenticating, or with another card).
    client_secret: str
    amount_due: int
    currency: str
    # The attempt as Stripe had it, recorded beside the invoice's row (invoice_payments.py).
    attempt: PaymentAttempt


async def pending_payment(
    stripe_client: stripe.StripeClient, subscription: Row
) -> tuple[PendingPayment, stripe.Invoice]:
    """The payment the pending update of `subscription` waits for: its latest invoice's, from
    Stripe; and the invoice, to be written through."""
    invoice_id = reference(subscription["latest_invoice"])
    async with translated_stripe_errors("retrieve the invoice of the change"):
        invoice = await stripe_client.v1.invoices.retrieve_async(invoice_id)
    attempt = await payment_attempt(stripe_client, invoice_id)
    if attempt is None:
        raise StripeRejected(f"invoice {invoice_id!r} of the pending change has no payment")
    values = invoice.to_dict()
    action = payment_action(attempt.status, attempt.voucher.method)
    reason = None
    if action == "pay":
        reason = failure_reason(attempt.error_code, attempt.decline_code)
        reason = reason or ErrorReason.CARD_DECLINED
    payment = PendingPayment(
        invoice_id=invoice_id,
        action=action,
        decline_reason=reason,
        client_secret=attempt.client_secret,
        amount_due=integer(values["amount_remaining"]),
        currency=string(values["currency"]),
        attempt=attempt,
    )
    return payment, invoice


async def write_pending_invoice(
    conn: AsyncConnection,
    *,
    stripe_client: stripe.StripeClient,
    payment: PendingPayment,
    invoice: stripe.Invoice,
) -> None:
    """Mirror the invoice of a pending payment as Stripe answered it, and its attempt beside it."""
    await apply_object(
        conn,
        mirror=INVOICES,
        stripe_client=stripe_client,
        row=invoice_row(invoice.to_dict()),
        created=answered_at(invoice),
        refetched=True,
    )
    await record_attempt(conn, payment.invoice_id, payment.attempt)
