"""Pending updates: a subscription change made with `payment_behavior=pending_if_incomplete`
applies only once the invoice it makes is paid.

As Stripe runs them: only the parameters a pending update can hold may be sent with it; a change
that makes no invoice (prorations left for the next one) applies at once, as does one whose
invoice is paid at once. Otherwise the subscription keeps its items (and its status: a failed
payment of a pending update never makes it `past_due`), records the change as `pending_update`
(its items as they would be, and `expires_at`: 23 hours later, or the end of the period or trial
if sooner), and its `latest_invoice` is the open invoice of the change. Paying that invoice
(the card holder authenticates, or the payment is confirmed with another card) applies the
change: `customer.subscription.pending_update_applied`, then `customer.subscription.updated`.
Unpaid at `expires_at` (a test clock, or the period's end), the change is discarded and the
invoice voided: `customer.subscription.pending_update_expired`.
"""

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import stripe
from localstripe.errors import UserError
from localstripe.resources import Invoice, PaymentIntent, Plan

from tatame_devstack.stripe_emulator.catalog import Price
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.intents import cancel_payment_intent
from tatame_devstack.stripe_emulator.render import shape

if TYPE_CHECKING:
    from tatame_devstack.stripe_emulator.subscriptions import PriceSubscription

PENDING_IF_INCOMPLETE = "pending_if_incomplete"
# How long a pending update waits for its payment, at most.
EXPIRY_SECONDS = 23 * 60 * 60
# Update parameters a pending update cannot hold (of those the emulator takes).
UNSUPPORTED = (
    "cancel_at",
    "cancel_at_period_end",
    "default_payment_method",
    "metadata",
    "pause_collection",
    "billing_cycle_anchor",
)


@dataclass(frozen=True, slots=True)
class Terms:
    """What a change sets: the item's plan and quantity, what the period was debited at, when
    the period started."""

    plan: Plan
    quantity: int
    debited: int | None
    period_start: int | None


@dataclass(frozen=True, slots=True)
class Pending:
    terms: Terms
    invoice: str
    expires_at: int


def check_params(sent: dict[str, Any]) -> None:
    """Refuse what a pending update cannot hold, as Stripe does."""
    refused = sorted(name for name in UNSUPPORTED if sent.get(name) is not None)
    if refused:
        raise UserError(
            400,
            "When `payment_behavior` is `pending_if_incomplete`, only parameters that a pending "
            f"update supports can be updated; remove: {', '.join(refused)}.",
            {"param": "payment_behavior"},
        )


def _terms(subscription: "PriceSubscription") -> Terms:
    item = subscription.items._list[0]
    return Terms(item.plan, item.quantity, subscription._debited, subscription._period_start)


def _set(subscription: "PriceSubscription", terms: Terms) -> None:
    item = subscription.items._list[0]
    item.plan, item.quantity = terms.plan, terms.quantity
    subscription._debited, subscription._period_start = terms.debited, terms.period_start


def change_once_paid(
    subscription: "PriceSubscription", plan: Plan, quantity: int, *, behavior: str
) -> None:
    """Change the item as `_change_terms` does, unless the invoice it makes is not paid at once:
    then keep the item as it was and hold the change as the subscription's pending update."""
    before, invoice_before = _terms(subscription), subscription.latest_invoice
    subscription._holds_unpaid_changes = True
    try:
        subscription._change_terms(plan, quantity, behavior=behavior)
    finally:
        subscription._holds_unpaid_changes = False
    if subscription.latest_invoice == invoice_before:
        return  # no invoice now: applied
    invoice = Invoice._api_retrieve(subscription.latest_invoice)
    if invoice.status == "paid":
        return
    after = _terms(subscription)
    _set(subscription, before)
    ends = [int(time.time()) + EXPIRY_SECONDS, subscription.current_period_end]
    if subscription.status == "trialing" and subscription.trial_end is not None:
        ends.append(subscription.trial_end)
    subscription._pending = Pending(after, invoice.id, min(ends))


def apply_if_paid(subscription: "PriceSubscription", invoice: Invoice) -> bool:
    """The invoice of the pending update was paid: the change applies. Whether it was that."""
    pending = subscription._pending
    if pending is None or pending.invoice != invoice.id:
        return False
    _set(subscription, pending.terms)
    subscription._pending = None
    send_event("customer.subscription.pending_update_applied", subscription)
    return True


def expire_if_due(subscription: "PriceSubscription", now: int) -> None:
    """Discard the pending update once `now` reaches its expiry, voiding its invoice."""
    pending = subscription._pending
    if pending is None or now < pending.expires_at:
        return
    subscription._pending = None
    invoice = Invoice._api_retrieve(pending.invoice)
    if invoice.status == "open":
        intent = PaymentIntent._api_retrieve(invoice.payment_intent)
        if intent.status != "canceled":
            cancel_payment_intent(intent.id)
        invoice._voided = True
        invoice.status_transitions["voided_at"] = now
        send_event("invoice.voided", invoice)
    send_event("customer.subscription.pending_update_expired", subscription)


def render_pending_update(subscription: "PriceSubscription") -> dict[str, Any] | None:
    """The subscription's `pending_update`: its items as the change would make them."""
    pending = subscription._pending
    if pending is None:
        return None
    item = subscription.items._list[0]
    plan = pending.terms.plan
    rendered = {
        **item._export(),
        "plan": plan._export(),
        "price": Price._api_retrieve(plan.id)._export(),
        "quantity": pending.terms.quantity,
    }
    return shape(
        stripe.Subscription.PendingUpdate,
        {
            "expires_at": pending.expires_at,
            "subscription_items": [shape(stripe.SubscriptionItem, rendered)],
        },
    )
