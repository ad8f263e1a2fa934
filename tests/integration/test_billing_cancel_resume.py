"""Cancelling and resuming subscriptions over real gRPC."""

import grpc

from tests.integration.billing_accounts import (
    BASIC_FEATURES,
    PRO_ONLY,
    end_period,
)


async def test_cancelling_at_period_end_keeps_the_features_until_the_period_ends(
    billing, no_trial, paying
) -> None:
    created = await paying.subscribe("pro_monthly")

    reply = await paying.call("CancelSubscription", id=created.subscription.id)

    assert reply.subscription.cancel_at_period_end is True
    assert reply.subscription.cancel_at == reply.subscription.current_period_end
    assert reply.subscription.status == "active"
    assert await paying.features() == BASIC_FEATURES | PRO_ONLY

    await end_period(billing, no_trial, created.subscription.id)

    assert (await paying.subscription(created.subscription.id)).status == "canceled"
    assert await paying.features() == set()


async def test_cancelling_now_ends_the_features_at_once(paying) -> None:
    created = await paying.subscribe("pro_monthly")

    reply = await paying.call("CancelSubscription", id=created.subscription.id, immediately=True)

    assert reply.subscription.status == "canceled"
    assert reply.subscription.HasField("ended_at")
    assert await paying.features() == set()
    refused = await paying.refused("ResumeSubscription", id=created.subscription.id)
    assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_resuming_undoes_a_cancellation_at_period_end(billing, paying) -> None:
    created = await paying.subscribe("basic_monthly")
    await paying.call("CancelSubscription", id=created.subscription.id)

    reply = await paying.call("ResumeSubscription", id=created.subscription.id)

    assert reply.subscription.cancel_at_period_end is False
    assert not reply.subscription.HasField("cancel_at")
    stripe_subscription = await billing.stripe.v1.subscriptions.retrieve_async(
        created.subscription.id
    )
    assert stripe_subscription.cancel_at_period_end is False


async def test_cancelling_drops_a_pending_downgrade(paying) -> None:
    created = await paying.subscribe("pro_monthly")
    await paying.call(
        "UpdateSubscription",
        id=created.subscription.id,
        price="basic_monthly",
        proration_behavior=3,
    )

    reply = await paying.call("CancelSubscription", id=created.subscription.id)

    assert reply.subscription.cancel_at_period_end is True
    assert not reply.subscription.scheduled_price_id
