"""Changing plans over real gRPC: upgrades now, downgrades at the period's (or trial's) end, and
previews of what a change bills."""

import grpc
from tatame.billing.v1 import billing_pb2

from tests.integration.billing_accounts import (
    BASIC_FEATURES,
    PRO_ONLY,
    end_period,
    price_id,
)


async def test_an_upgrade_takes_effect_now_with_the_new_features(billing, paying) -> None:
    created = await paying.subscribe("basic_monthly")

    reply = await paying.call(
        "UpdateSubscription",
        id=created.subscription.id,
        price="pro_monthly",
        proration_behavior=billing_pb2.PRORATION_BEHAVIOR_ALWAYS_INVOICE,
    )

    assert reply.takes_effect == "now"
    assert reply.subscription.price_id == await price_id(billing, "pro_monthly")
    fetched = await paying.subscription(created.subscription.id)
    assert fetched.price_id == reply.subscription.price_id
    assert await paying.features() == BASIC_FEATURES | PRO_ONLY
    # The proration was invoiced and paid at once.
    invoices = (await paying.call("ListInvoices")).invoices
    assert invoices  # the mirror has at least the first invoice
    stripe_invoices = await billing.stripe.v1.invoices.list_async(
        params={"customer": created.stripe_customer_id}
    )
    assert len(stripe_invoices.data) == 2


async def test_a_downgrade_waits_for_the_period_end(billing, no_trial, paying) -> None:
    created = await paying.subscribe("pro_monthly")
    subscription_id = created.subscription.id

    reply = await paying.call(
        "UpdateSubscription",
        id=subscription_id,
        price="basic_monthly",
        proration_behavior=billing_pb2.PRORATION_BEHAVIOR_CREATE_PRORATIONS,
    )

    pro, basic = await price_id(billing, "pro_monthly"), await price_id(billing, "basic_monthly")
    current = await paying.subscription(subscription_id)
    assert reply.takes_effect == "period_end"
    assert reply.effective_time == current.current_period_end
    assert (current.price_id, current.scheduled_price_id) == (pro, basic)
    assert current.scheduled_quantity == 1
    assert current.scheduled_change_time == current.current_period_end
    assert await paying.features() == BASIC_FEATURES | PRO_ONLY

    await end_period(billing, no_trial, subscription_id)

    renewed = await paying.subscription(subscription_id)
    assert renewed.price_id == basic
    assert not renewed.scheduled_price_id
    assert renewed.current_period_start == current.current_period_end
    assert await paying.features() == BASIC_FEATURES


async def test_a_downgrade_during_the_trial_waits_for_the_trials_end_and_keeps_it(
    billing, stub, account
) -> None:
    created = await account.call("CreateSubscription", price="pro_monthly", email=account.email)
    await billing.stripe.v1.setup_intents.confirm_async(
        created.client_secret.partition("_secret_")[0], params={"payment_method": "pm_card_visa"}
    )
    subscription_id = created.subscription.id

    reply = await account.call(
        "UpdateSubscription", id=subscription_id, price="basic_monthly", proration_behavior=1
    )

    trial_end = created.subscription.trial_end
    assert (reply.takes_effect, reply.effective_time) == ("period_end", trial_end)
    assert reply.subscription.status == "trialing"
    assert reply.subscription.scheduled_change_time == trial_end
    schedule = await billing.stripe.v1.subscription_schedules.retrieve_async(
        (await billing.stripe.v1.subscriptions.retrieve_async(subscription_id)).schedule
    )
    assert schedule.phases[0].trial_end == trial_end.seconds
    assert await account.features() == BASIC_FEATURES | PRO_ONLY

    await end_period(billing, stub, subscription_id)  # the trial ends

    after = await account.subscription(subscription_id)
    assert (after.status, after.price_id) == ("active", await price_id(billing, "basic_monthly"))
    assert await account.features() == BASIC_FEATURES


async def test_asking_for_the_current_plan_drops_a_pending_downgrade(billing, paying) -> None:
    created = await paying.subscribe("pro_monthly")
    change = {"id": created.subscription.id, "proration_behavior": 1}
    await paying.call("UpdateSubscription", price="basic_monthly", **change)

    reply = await paying.call("UpdateSubscription", price="pro_monthly", **change)

    assert reply.takes_effect == "now"
    assert not (await paying.subscription(created.subscription.id)).scheduled_price_id
    stripe_subscription = await billing.stripe.v1.subscriptions.retrieve_async(
        created.subscription.id
    )
    assert stripe_subscription.schedule is None


async def test_a_preview_shows_the_proration_an_upgrade_bills(paying) -> None:
    created = await paying.subscribe("basic_monthly", quantity=1)
    upgrade = {"id": created.subscription.id, "price": "pro_monthly"}

    now = await paying.call(
        "PreviewSubscriptionChange",
        proration_behavior=billing_pb2.PRORATION_BEHAVIOR_ALWAYS_INVOICE,
        **upgrade,
    )
    later = await paying.call("PreviewSubscriptionChange", **upgrade)
    downgrade = await paying.call(
        "PreviewSubscriptionChange", id=created.subscription.id, quantity=1
    )

    assert now.takes_effect == "now"
    assert now.currency == "usd"
    assert all(line.proration for line in now.lines)
    assert len(now.lines) == 2
    # Just started: nearly the whole month of Pro, less nearly the whole month of Basic.
    assert 1990 <= now.amount_due <= 2000 == 3900 - 1900
    assert sum(line.amount for line in later.lines if line.proration) == now.amount_due
    assert later.amount_due == now.amount_due + 3900  # with the next month of Pro
    assert downgrade.takes_effect == "now"  # the same terms: nothing to wait for


async def test_a_preview_of_a_downgrade_shows_the_next_invoice_without_proration(
    paying,
) -> None:
    created = await paying.subscribe("pro_monthly")

    preview = await paying.call(
        "PreviewSubscriptionChange", id=created.subscription.id, price="basic_monthly"
    )

    assert preview.takes_effect == "period_end"
    assert preview.amount_due == 1900
    assert not any(line.proration for line in preview.lines)


async def test_an_update_without_a_proration_behavior_is_invalid_argument(paying) -> None:
    created = await paying.subscribe("basic_monthly")

    refused = await paying.refused(
        "UpdateSubscription", id=created.subscription.id, price="pro_monthly"
    )

    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT
