"""Which of Stripe's subscription statuses are live: one set, for billing and the gateway."""

# Stripe's statuses of a subscription that has not ended: a principal holds one at a time.
LIVE_STATUSES = frozenset({"incomplete", "trialing", "active", "past_due", "unpaid", "paused"})
