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
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.invoices import INVOICES, PaymentAction, invoice_row, with_payment_action
from services.billing.mirror import answered_at, apply_object, integer, mapping, reference, string
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


def _default_payment(invoice: dict[str, Any]) -> str:
    """The PaymentIntent id of an invoice's default payment (`payments` expanded)."""
    payments = [mapping(payment) for payment in mapping(invoice["payments"])["data"]]
    payment = next((p for p in payments if p.get("is_default")), payments[-1])
    return reference(mapping(payment["payment"])["payment_intent"])


async def pending_payment(
    stripe_client: stripe.StripeClient, subscription: dict[str, Any]
) -> tuple[PendingPayment, stripe.Invoice]:
    """The payment the pending update of `subscription` waits for: its latest invoice's, from
    Stripe; and the invoice, to be written through."""
    async with translated_stripe_errors("retrieve the invoice of the change"):
        invoice = await stripe_client.v1.invoices.retrieve_async(
            reference(subscription["latest_invoice"]), params={"expand": ["payments"]}
        )
        values = invoice.to_dict()
        intent = await stripe_client.v1.payment_intents.retrieve_async(_default_payment(values))
    declined = intent.status != "requires_action"
    reason = None
    if declined:
        error = intent.last_payment_error
        found = None if error is None else failure_reason(error.code, error.decline_code)
        reason = found or ErrorReason.CARD_DECLINED
    payment = PendingPayment(
        invoice_id=string(values["id"]),
        action="pay" if declined else "authenticate",
        decline_reason=reason,
        client_secret=intent.client_secret or "",
        amount_due=integer(values["amount_remaining"]),
        currency=string(values["currency"]),
    )
    return payment, invoice


async def write_pending_invoice(
    conn: AsyncConnection,
    *,
    stripe_client: stripe.StripeClient,
    payment: PendingPayment,
    invoice: stripe.Invoice,
) -> None:
    """Mirror the invoice of a pending payment as Stripe answered it, with what it waits for."""
    await apply_object(
        conn,
        mirror=INVOICES,
        stripe_client=stripe_client,
        row=with_payment_action(invoice_row(invoice.to_dict()), payment.action),
        created=answered_at(invoice),
        refetched=True,
    )
