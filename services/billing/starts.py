"""Starting a subscription (PaymentSheet's CreateSubscription, Checkout's sessions): one live
subscription per principal, and a free trial on the first one ever.

Every start holds the principal's advisory lock (the one customer creation takes) while it
checks the mirror and Stripe and creates what it creates, so two starts never race. A start
refuses when a subscription is live in either (Stripe's list catches what the mirror has not
heard of yet). An unfinished one does not block: the start hands it back or replaces it.
Unfinished are `incomplete` ones (created by PaymentSheet, first payment never made) and trials
waiting for a payment method (made to cancel at their end without one, and none saved: see
`subscription_rules.awaits_payment_method`). A start that replaces such a trial gives what is
left of it, so an abandoned PaymentSheet neither blocks the next attempt nor costs the trial.
"""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.auth.principal import Principal
from services.billing.customers import (
    CustomerRecord,
    customer_default_payment_method,
    lock_principal,
)
from services.billing.errors import LiveSubscriptionExists
from services.billing.idempotency import RequestKey, made_by
from services.billing.settings import BillingRules
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscription_rules import (
    awaits_payment_method,
    blocking_subscription,
    continued_trial_days,
    trial_days,
)
from services.billing.subscriptions import (
    default_payment_method,
    mirrored_statuses,
    stripe_subscriptions,
    trial_missing_payment_method,
    write_through,
)


@dataclass(frozen=True, slots=True)
class Start:
    """A start under way, holding the principal's lock in `conn`'s transaction."""

    conn: AsyncConnection
    customer: CustomerRecord
    # The trial to give, in days: None unless this is the principal's first subscription ever,
    # or what is left of the trial waiting for a payment method that this start replaces.
    trial_days: int | None
    # The principal's unfinished subscriptions in Stripe: `incomplete` ones (first payment
    # never made) and trials waiting for a payment method.
    unfinished: list[dict[str, Any]]
    # The subscription an earlier run of this very request created, if one did.
    own: dict[str, Any] | None


@asynccontextmanager
async def starting(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    principal: Principal,
    customer: CustomerRecord,
    idempotency: RequestKey | None = None,
) -> AsyncIterator[Start]:
    """Hold the principal's lock while a subscription starts; refused when one is live.

    LiveSubscriptionExists (`live_subscription_exists`) when one is live (in the mirror or in Stripe). Open
    Checkout Sessions of the customer are expired, so none completes into a second subscription.
    What an earlier run of the same request (`idempotency`) created neither blocks nor expires:
    that run failed after Stripe answered, and this one answers with it.
    """
    async with engine.begin() as conn:
        await lock_principal(conn, principal)
        in_stripe = await stripe_subscriptions(stripe_client, customer.stripe_customer_id)
        own = next((s for s in in_stripe if made_by(idempotency, s)), None)
        statuses = await mirrored_statuses(conn, customer.stripe_customer_id)
        statuses.update({subscription["id"]: subscription["status"] for subscription in in_stripe})
        others = [s for s in in_stripe if s is not own]
        unfinished = await _unfinished(stripe_client, customer.stripe_customer_id, others)
        blocking = blocking_subscription(
            statuses,
            own_id=None if own is None else own["id"],
            unfinished={s["id"] for s in unfinished},
        )
        if blocking is not None:
            raise LiveSubscriptionExists(f"this account already has {blocking}")
        await _expire_open_checkout_sessions(
            stripe_client, customer.stripe_customer_id, idempotency
        )
        trial_ends = [s["trial_end"] for s in unfinished if s["status"] == "trialing"]
        yield Start(
            conn=conn,
            customer=customer,
            trial_days=continued_trial_days(max(trial_ends), now=int(time.time()))
            if trial_ends
            else trial_days(configured_days=rules.trial_days, ever_subscribed=bool(statuses)),
            unfinished=unfinished,
            own=own,
        )


async def _unfinished(
    stripe_client: stripe.StripeClient,
    stripe_customer_id: str,
    subscriptions: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Of the customer's subscriptions in Stripe, the unfinished: `incomplete`, or trials waiting
    for a payment method (the customer's default is read only when one might be)."""
    incomplete = [s for s in subscriptions if s["status"] == "incomplete"]
    trials = [
        s
        for s in subscriptions
        if awaits_payment_method(
            status=s["status"],
            trial_missing_payment_method=trial_missing_payment_method(s),
            payment_method=default_payment_method(s) is not None,
        )
    ]
    if trials:
        async with translated_stripe_errors("retrieve the customer"):
            customer = await stripe_client.v1.customers.retrieve_async(stripe_customer_id)
        if customer_default_payment_method(customer.to_dict()) is not None:
            trials = []
    return incomplete + trials


async def _expire_open_checkout_sessions(
    stripe_client: stripe.StripeClient, stripe_customer_id: str, idempotency: RequestKey | None
) -> None:
    async with translated_stripe_errors("expire the open checkout sessions"):
        listed = await stripe_client.v1.checkout.sessions.list_async(
            params={"customer": stripe_customer_id, "status": "open", "limit": 100}
        )
        async for session in listed.auto_paging_iter():
            if not made_by(idempotency, session.to_dict()):
                await stripe_client.v1.checkout.sessions.expire_async(session.id)


async def cancel_unfinished(
    start: Start,
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
) -> None:
    """Cancel the principal's unfinished subscriptions (a new one replaces them).

    Each is written through in a transaction of its own, committed at once, not in the start's:
    that one goes on to write the new subscription, and a batch of events holding the new one
    (its `created`) may be waiting for a canceled one (its `deleted`), which the start's
    transaction would then hold."""
    for subscription in start.unfinished:
        async with translated_stripe_errors("cancel an unfinished subscription"):
            canceled = await stripe_client.v1.subscriptions.cancel_async(subscription["id"])
        async with engine.begin() as conn:
            await write_through(
                conn, stripe_client=stripe_client, principal=principal, answer=canceled
            )
