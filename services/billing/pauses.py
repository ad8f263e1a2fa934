"""Pausing and resuming collection (Stripe's `pause_collection`): the subscription stays in its
status while Stripe makes its invoices as the pause's behavior says (`void`: voided, the
service stops; `keep_as_draft`: drafts to collect later; `mark_uncollectible`: written off),
until `resumes_at` or an unpause. Each acts on Stripe's current state of a subscription of the
principal's customer and writes Stripe's answer through the mirror; what the pause does to
access is the entitlement policy's (entitlements.py)."""

from datetime import datetime
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from stripe import RequestOptions
from stripe.params import SubscriptionUpdateParams, SubscriptionUpdateParamsPauseCollection

from services.auth.principal import Principal
from services.billing.errors import Conflict, InvalidArgument
from services.billing.mirror import answered_at, optional, reference
from services.billing.settings import PAUSE_BEHAVIORS
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscription_changes import owned_subscription
from services.billing.subscriptions import SubscriptionRecord, write_through
from services.common.errors import ErrorReason
from services.common.subscription_statuses import LIVE_STATUSES

# Statuses whose collection may be paused: a subscription that is being paid for.
_PAUSABLE = frozenset({"active", "trialing", "past_due"})


def _require_live(status: str) -> None:
    if status not in LIVE_STATUSES:
        raise Conflict(f"the subscription is {status}", reason=ErrorReason.SUBSCRIPTION_ENDED)


async def pause_subscription(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
    behavior: str,
    resumes_at: datetime | None,
    allowed_behaviors: frozenset[str],
) -> SubscriptionRecord:
    """Pause collection with `behavior` (one of `allowed_behaviors`, BILLING_PAUSE_BEHAVIORS)
    until `resumes_at` (after now by Stripe's clock), or until unpaused when None.

    Only an active, trialing or past_due subscription pauses. The same pause again changes
    nothing in Stripe; another behavior or resume time replaces the pause in place.
    """
    if behavior not in PAUSE_BEHAVIORS:
        raise InvalidArgument(f"behavior must be one of {', '.join(PAUSE_BEHAVIORS)}")
    if behavior not in allowed_behaviors:
        raise InvalidArgument(
            f"pausing with behavior {behavior} is not offered here",
            reason=ErrorReason.PAUSE_BEHAVIOR_NOT_ALLOWED,
        )
    owned = await owned_subscription(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
    )
    subscription, answer = owned.data, owned.answer
    _require_live(subscription["status"])
    if subscription["status"] not in _PAUSABLE:
        raise Conflict(
            f"a subscription that is {subscription['status']} cannot pause its payments",
            reason=ErrorReason.SUBSCRIPTION_NOT_PAUSABLE,
        )
    resumes = None if resumes_at is None else int(resumes_at.timestamp())
    if resumes is not None and resumes <= answered_at(owned.answer).timestamp():
        raise InvalidArgument("resumes_at must be in the future")
    current = subscription.get("pause_collection") or {}
    if (current.get("behavior"), current.get("resumes_at")) != (behavior, resumes):
        pause: SubscriptionUpdateParamsPauseCollection = {"behavior": behavior}
        if resumes is not None:
            pause["resumes_at"] = resumes
        async with translated_stripe_errors("pause the subscription's payments"):
            answer = await stripe_client.v1.subscriptions.update_async(
                subscription["id"], params={"pause_collection": pause}
            )
    async with engine.begin() as conn:
        return await write_through(
            conn, stripe_client=stripe_client, principal=principal, answer=answer
        )


async def _voided_renewal(
    stripe_client: stripe.StripeClient, subscription: dict[str, Any]
) -> str | None:
    """The id of the current period's renewal invoice (the latest) when it was voided: the
    period went unpaid. None otherwise."""
    invoice_id = optional(reference, subscription.get("latest_invoice"))
    if invoice_id is None:
        return None
    async with translated_stripe_errors("retrieve the subscription's latest invoice"):
        invoice = await stripe_client.v1.invoices.retrieve_async(invoice_id)
    voided = (invoice.status, invoice.billing_reason) == ("void", "subscription_cycle")
    return invoice_id if voided else None


async def unpause_subscription(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
) -> SubscriptionRecord:
    """Collect again now (clear `pause_collection`), if collection is paused.

    When a void pause left the current period unpaid (its renewal voided), the billing cycle
    restarts now without prorations: a new period is invoiced and charged at once, so access
    comes back paid for (or past_due, as any failed renewal), never free until the next renewal.
    That restart charges once however many unpauses race for it: its Stripe idempotency key is
    the voided invoice's.
    """
    owned = await owned_subscription(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
    )
    subscription, answer = owned.data, owned.answer
    _require_live(subscription["status"])
    if subscription.get("pause_collection") is not None:
        params: SubscriptionUpdateParams = {"pause_collection": ""}
        options: RequestOptions = {}
        voided = await _voided_renewal(stripe_client, subscription)
        if voided is not None:
            params |= {"billing_cycle_anchor": {"type": "now"}, "proration_behavior": "none"}
            options["idempotency_key"] = f"unpause:{subscription['id']}:{voided}"
        async with translated_stripe_errors("resume the subscription's payments"):
            answer = await stripe_client.v1.subscriptions.update_async(
                subscription["id"], params=params, options=options
            )
    async with engine.begin() as conn:
        return await write_through(
            conn, stripe_client=stripe_client, principal=principal, answer=answer
        )
