"""Subscribing from the mobile app (PaymentSheet) over real gRPC: the first payment, the trial for
a first subscription only, and one live subscription per principal."""

import grpc
from sqlalchemy import select

from services.billing.models import invoices
from services.common.rpc import reason_of
from tests.harness import APP_ORIGIN
from tests.integration.billing_accounts import (
    BASIC_FEATURES,
    MOBILE_STRIPE_VERSION,
    Outcome,
    apply_events,
    price_id,
    stripe_subscription_ids,
)


async def test_a_mobile_subscription_becomes_active_once_its_payment_is_confirmed(
    billing, no_trial, paying
) -> None:
    created = await paying.call(
        "CreateSubscription",
        price="basic_monthly",
        email=paying.email,
        mobile_stripe_version=MOBILE_STRIPE_VERSION,
    )
    assert created.subscription.status == "incomplete"
    assert (created.intent_type, created.trial_applied) == ("payment_intent", False)
    assert created.client_secret.startswith("pi_")
    assert created.ephemeral_key_secret.startswith("ek_")
    assert await paying.features() == set()

    intent_id = created.client_secret.partition("_secret_")[0]
    await billing.stripe.v1.payment_intents.confirm_async(
        intent_id, params={"payment_method": "pm_card_visa"}
    )
    outcomes = await apply_events(billing, no_trial, created.subscription.id)

    assert Outcome.OUTCOME_APPLIED in outcomes
    subscription = await paying.subscription(created.subscription.id)
    assert subscription.status == "active"
    assert await paying.features() == BASIC_FEATURES
    [invoice] = (await paying.call("ListInvoices")).invoices
    assert (invoice.status, invoice.amount_paid) == ("paid", 1900)
    [card] = (await paying.call("ListPaymentMethods")).payment_methods
    assert (card.card_brand, card.card_last4) == ("visa", "4242")


async def test_the_trial_goes_to_the_first_subscription_only(account) -> None:
    first = await account.call("CreateSubscription", price="basic_monthly", email=account.email)
    assert (first.trial_applied, first.subscription.status) == (True, "trialing")
    assert first.intent_type == "setup_intent"
    assert first.client_secret.startswith("seti_")
    await account.call("CancelSubscription", id=first.subscription.id, immediately=True)

    second = await account.call("CreateSubscription", price="basic_monthly")

    assert second.trial_applied is False
    assert (second.intent_type, second.subscription.status) == ("payment_intent", "incomplete")


async def test_a_trials_zero_invoice_is_mirrored_but_not_listed_to_the_app(
    billing, stub, account
) -> None:
    created = await account.call("CreateSubscription", price="basic_monthly", email=account.email)
    stripe_subscription = await billing.stripe.v1.subscriptions.retrieve_async(
        created.subscription.id
    )
    trial_invoice = stripe_subscription.latest_invoice
    assert isinstance(trial_invoice, str)

    await apply_events(billing, stub, created.subscription.id, trial_invoice)

    async with billing.engine.connect() as conn:
        mirrored = (
            await conn.execute(
                select(invoices.c.total, invoices.c.status).where(invoices.c.id == trial_invoice)
            )
        ).one()
    assert (mirrored.total, mirrored.status) == (0, "paid")
    assert list((await account.call("ListInvoices")).invoices) == []


async def test_the_trial_is_refused_when_stripe_has_a_subscription_the_mirror_lacks(
    billing, account
) -> None:
    customer_id = await account.customer_id()
    # A subscription billing never heard of (its events are still on their way), since ended.
    earlier = await billing.stripe.v1.subscriptions.create_async(
        params={
            "customer": customer_id,
            "items": [{"price": await price_id(billing, "basic_monthly")}],
            "trial_period_days": 3,
        }
    )
    await billing.stripe.v1.subscriptions.cancel_async(earlier.id)

    created = await account.call("CreateSubscription", price="basic_monthly")

    assert created.trial_applied is False


async def test_a_trials_setup_intent_saves_the_card_for_the_subscription(
    billing, stub, account
) -> None:
    created = await account.call("CreateSubscription", price="pro_monthly", email=account.email)
    setup_intent_id = created.client_secret.partition("_secret_")[0]

    await billing.stripe.v1.setup_intents.confirm_async(
        setup_intent_id, params={"payment_method": "pm_card_visa"}
    )
    await apply_events(billing, stub, created.subscription.id)

    subscription = await billing.stripe.v1.subscriptions.retrieve_async(created.subscription.id)
    [card] = (await account.call("ListPaymentMethods")).payment_methods
    assert subscription.default_payment_method == card.id
    assert subscription.pending_setup_intent is None


async def test_a_second_live_subscription_is_refused_and_none_is_created_in_stripe(
    billing, account
) -> None:
    first = await account.subscribe("basic_monthly")
    customer_id = first.stripe_customer_id
    before = await stripe_subscription_ids(billing, customer_id)

    refused = await account.refused("CreateSubscription", price="pro_monthly")
    refused_checkout = await account.refused(
        "CreateCheckoutSession",
        price="pro_monthly",
        success_url=f"{APP_ORIGIN}/done",
        cancel_url=f"{APP_ORIGIN}/billing",
    )

    for error in (refused, refused_checkout):
        assert error.code() is grpc.StatusCode.ALREADY_EXISTS
        assert reason_of(error) == "live_subscription_exists"
    assert await stripe_subscription_ids(billing, customer_id) == before
    listed = await billing.stripe.v1.checkout.sessions.list_async(params={"customer": customer_id})
    assert listed.data == []


async def test_a_live_subscription_the_mirror_has_not_heard_of_still_refuses_a_second(
    billing, account
) -> None:
    customer_id = await account.customer_id()
    await billing.stripe.v1.subscriptions.create_async(
        params={
            "customer": customer_id,
            "items": [{"price": await price_id(billing, "basic_monthly")}],
            "trial_period_days": 7,
        }
    )
    before = await stripe_subscription_ids(billing, customer_id)

    refused = await account.refused("CreateSubscription", price="pro_monthly")

    assert refused.code() is grpc.StatusCode.ALREADY_EXISTS
    assert reason_of(refused) == "live_subscription_exists"
    assert await stripe_subscription_ids(billing, customer_id) == before


async def test_an_unpaid_subscription_is_handed_back_for_the_same_plan_and_replaced_for_another(
    billing, paying
) -> None:
    first = await paying.call("CreateSubscription", price="basic_monthly", email=paying.email)
    again = await paying.call("CreateSubscription", price="basic_monthly")
    other = await paying.call("CreateSubscription", price="pro_monthly")

    assert again.subscription.id == first.subscription.id
    assert again.client_secret == first.client_secret
    assert other.subscription.id != first.subscription.id
    replaced = await billing.stripe.v1.subscriptions.retrieve_async(first.subscription.id)
    assert replaced.status == "canceled"
    assert (await paying.subscription(first.subscription.id)).status == "canceled"
