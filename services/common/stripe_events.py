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
PAYMENT_METHOD_EVENTS = ("payment_method.attached", "payment_method.detached")
# A completed Checkout Session names the subscription it created.
CHECKOUT_COMPLETED = "checkout.session.completed"

BILLING_EVENT_TYPES: frozenset[str] = frozenset(
    {
        *CUSTOMER_EVENTS,
        *PRODUCT_EVENTS,
        *PRICE_EVENTS,
        *SUBSCRIPTION_EVENTS,
        *SCHEDULE_EVENTS,
        *INVOICE_EVENTS,
        *PAYMENT_METHOD_EVENTS,
        CHECKOUT_COMPLETED,
    }
)
