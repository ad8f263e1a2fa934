"""The Stripe event types billing consumes: one list for the code that applies them (billing)
and for the webhook endpoint that subscribes to them (`python -m services.webhooks endpoint`)."""

CUSTOMER_EVENTS = ("customer.created", "customer.updated", "customer.deleted")
PRODUCT_EVENTS = ("product.created", "product.updated", "product.deleted")
PRICE_EVENTS = ("price.created", "price.updated", "price.deleted")
SUBSCRIPTION_EVENTS = tuple(
    f"customer.subscription.{e}"
    for e in (
        "created",
        "updated",
        "deleted",
        "paused",
        "resumed",
        "trial_will_end",
        # A change waiting for its payment (payment_behavior=pending_if_incomplete) was
        # applied once paid, or discarded at its expiry.
        "pending_update_applied",
        "pending_update_expired",
    )
)
SCHEDULE_EVENTS = tuple(
    f"subscription_schedule.{e}"
    for e in ("created", "updated", "released", "canceled", "completed", "aborted", "expiring")
)
INVOICE_EVENTS = tuple(
    f"invoice.{e}"
    for e in (
        "created",
        "updated",
        "finalized",
        "paid",
        "payment_succeeded",
        "payment_failed",
        "payment_action_required",
        "voided",
        "marked_uncollectible",
    )
)
# Of those, the events that say an attempt to pay failed or waits for the card holder: billing
# fetches how (the invoice's PaymentIntent), which the invoice does not carry.
INVOICE_PAYMENT_ATTEMPT_EVENTS = ("invoice.payment_failed", "invoice.payment_action_required")
PAYMENT_METHOD_EVENTS = ("payment_method.attached", "payment_method.detached")
# One-time purchases: their payment intents, the charges that move their money (refunded in
# part or in full), the disputes a bank opens on a charge. A subscription invoice's payment
# intent waiting for a payment made outside the app (a boleto voucher issued, a debit
# processing), or whose voucher expired, is recorded beside its invoice.
PAYMENT_INTENT_EVENTS = tuple(
    f"payment_intent.{e}"
    for e in (
        "created",
        "processing",
        "requires_action",
        "succeeded",
        "payment_failed",
        "canceled",
    )
)
CHARGE_EVENTS = tuple(
    f"charge.{e}" for e in ("succeeded", "failed", "captured", "updated", "refunded")
)
DISPUTE_EVENTS = tuple(
    f"charge.dispute.{e}"
    for e in ("created", "updated", "closed", "funds_withdrawn", "funds_reinstated")
)
# A refund names its charge, which is fetched, then mirrored (its amount refunded).
REFUND_EVENTS = ("refund.created", "refund.updated", "refund.failed")
# A completed Checkout Session names the subscription it created.
CHECKOUT_COMPLETED = "checkout.session.completed"
# A session paid by a delayed method (a boleto) completes unpaid; these say how its payment
# ended (the subscription is active, or stays incomplete until Stripe ends it).
CHECKOUT_ASYNC_PAYMENT_EVENTS = (
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
)

BILLING_EVENT_TYPES: frozenset[str] = frozenset(
    {
        *CUSTOMER_EVENTS,
        *PRODUCT_EVENTS,
        *PRICE_EVENTS,
        *SUBSCRIPTION_EVENTS,
        *SCHEDULE_EVENTS,
        *INVOICE_EVENTS,
        *PAYMENT_METHOD_EVENTS,
        *PAYMENT_INTENT_EVENTS,
        *CHARGE_EVENTS,
        *DISPUTE_EVENTS,
        *REFUND_EVENTS,
        CHECKOUT_COMPLETED,
        *CHECKOUT_ASYNC_PAYMENT_EVENTS,
    }
)
