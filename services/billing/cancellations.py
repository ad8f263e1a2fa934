"""Ending a subscription: cancelling it (at the period end, or now) and undoing a planned
cancellation. Each acts on Stripe's current state of a subscription of the principal's customer
and writes Stripe's answer through the mirror."""

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from stripe.params import SubscriptionUpdateParams

from services.auth.principal import Principal
from services.billing.errors import Conflict
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscription_changes import owned_subscription, release_schedule
from services.billing.subscriptions import SubscriptionRecord, write_through
from services.common.errors import ErrorReason
from services.common.subscription_statuses import LIVE_STATUSES


async def cancel_subscription(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
    immediately: bool,
) -> SubscriptionRecord:
    """Cancel at the end of the period (access until then), or now.

    An `incomplete` subscription (never paid, no period to keep) is canceled now in any case. A
    pending downgrade is dropped.
    """
    owned = await owned_subscription(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
    )
    subscription = owned.data
    if subscription["status"] not in LIVE_STATUSES:
        raise Conflict(
            f"the subscription is {subscription['status']}", reason=ErrorReason.SUBSCRIPTION_ENDED
        )
    released = await release_schedule(stripe_client, subscription)
    async with translated_stripe_errors("cancel the subscription"):
        if immediately or subscription["status"] == "incomplete":
            answer = await stripe_client.v1.subscriptions.cancel_async(subscription["id"])
        else:
            answer = await stripe_client.v1.subscriptions.update_async(
                subscription["id"], params={"cancel_at_period_end": True}
            )
    async with engine.begin() as conn:
        return await write_through(
            conn,
            stripe_client=stripe_client,
            principal=principal,
            answer=answer,
            schedules=released,
        )


async def resume_subscription(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
) -> SubscriptionRecord:
    """Undo a planned cancellation (`cancel_at_period_end` or `cancel_at`), if there is one."""
    owned = await owned_subscription(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
    )
    subscription, answer = owned.data, owned.answer
    if subscription["status"] not in LIVE_STATUSES:
        raise Conflict(
            f"the subscription is {subscription['status']}", reason=ErrorReason.SUBSCRIPTION_ENDED
        )
    params: SubscriptionUpdateParams | None = None
    if subscription["cancel_at_period_end"]:
        params = {"cancel_at_period_end": False}
    elif subscription.get("cancel_at") is not None:
        params = {"cancel_at": ""}
    if params is not None:
        async with translated_stripe_errors("resume the subscription"):
            answer = await stripe_client.v1.subscriptions.update_async(
                subscription["id"], params=params
            )
    async with engine.begin() as conn:
        return await write_through(
            conn, stripe_client=stripe_client, principal=principal, answer=answer
        )
