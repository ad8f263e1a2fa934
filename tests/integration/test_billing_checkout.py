"""Web checkout over real gRPC: Checkout and Billing Portal sessions, confirming a completed
checkout, and redirects only to the app's origins."""

import grpc
import pytest

from tests.harness import APP_ORIGIN
from tests.integration.billing_accounts import (
    BASIC_FEATURES,
    PRO_ONLY,
    TRIAL_DAYS,
    Outcome,
    apply_events,
    checkout,
    complete,
    price_id,
)


async def test_checkout_session_is_for_the_principals_customer_with_return_placeholder(
    billing, account
) -> None:
    reply = await account.call(
        "CreateCheckoutSession",
        price="pro_monthly",
        success_url=f"{APP_ORIGIN}/billing/done#top",
        cancel_url=f"{APP_ORIGIN}/billing",
        email=account.email,
        name="Ana",
    )
    session = await billing.stripe.v1.checkout.sessions.retrieve_async(reply.session_id)
    customer = await account.call("GetCustomer")

    assert reply.url == session.url
    assert reply.url.startswith("https://")
    assert session.mode == "subscription"
    assert session.status == "open"
    assert session.customer == customer.customer.stripe_customer_id
    assert session.client_reference_id == account.principal.key
    assert session.metadata["tatame_principal"] == account.principal.key
    assert session.allow_promotion_codes is True
    assert session.success_url == (
        f"{APP_ORIGIN}/billing/done?session_id={{CHECKOUT_SESSION_ID}}#top"
    )
    assert session.amount_total == 3900


async def test_a_completed_checkout_confirmed_at_once_is_active_with_the_first_trial(
    billing, account
) -> None:
    session_id = await checkout(account)
    await complete(billing, session_id)

    reply = await account.call("ConfirmCheckoutSession", session_id=session_id)

    assert reply.status == "complete"
    assert reply.subscription.status == "trialing"
    assert reply.subscription.price_id == await price_id(billing, "pro_monthly")
    trial_days = (
        reply.subscription.trial_end.seconds - reply.subscription.trial_start.seconds
    ) // 86400
    assert trial_days == TRIAL_DAYS
    assert await account.features() == BASIC_FEATURES | PRO_ONLY


async def test_confirm_then_the_webhook_leaves_one_unchanged_subscription(
    billing, stub, account
) -> None:
    session_id = await checkout(account)
    await complete(billing, session_id)
    confirmed = await account.call("ConfirmCheckoutSession", session_id=session_id)

    await apply_events(billing, stub, session_id, confirmed.subscription.id)

    [listed] = (await account.call("ListSubscriptions")).subscriptions
    assert listed == confirmed.subscription  # the events changed nothing
    again = await apply_events(billing, stub, session_id)
    assert again
    assert set(again) == {Outcome.OUTCOME_DUPLICATE}


async def test_the_webhook_then_confirm_leaves_one_subscription(billing, stub, account) -> None:
    session_id = await checkout(account)
    completed = await complete(billing, session_id)
    await apply_events(billing, stub, session_id, completed["subscription"])
    [by_webhook] = (await account.call("ListSubscriptions")).subscriptions

    confirmed = await account.call("ConfirmCheckoutSession", session_id=session_id)

    [listed] = (await account.call("ListSubscriptions")).subscriptions
    assert listed.id == by_webhook.id == confirmed.subscription.id == completed["subscription"]
    assert listed.status == by_webhook.status == "trialing"


async def test_an_open_checkout_session_confirms_without_a_subscription(account) -> None:
    session_id = await checkout(account)

    reply = await account.call("ConfirmCheckoutSession", session_id=session_id)

    assert reply.status == "open"
    assert not reply.HasField("subscription")


@pytest.mark.parametrize(
    "success_url",
    [
        "https://evil.example/billing/done",
        f"{APP_ORIGIN}.evil.example/done",
        "https://app.tatame.test@evil.example/done",
        APP_ORIGIN.replace("https://", "http://") + "/done",
        "/billing/done",
        "",
    ],
)
async def test_a_success_url_off_the_allowed_origins_is_invalid_argument(
    account, success_url
) -> None:
    refused = await account.refused(
        "CreateCheckoutSession",
        price="pro_monthly",
        success_url=success_url,
        cancel_url=f"{APP_ORIGIN}/billing",
        email=account.email,
    )
    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert await account.refused("GetCustomer")  # nothing was created, not even the customer


async def test_checkout_of_a_one_time_price_is_invalid_argument(account) -> None:
    refused = await account.refused(
        "CreateCheckoutSession",
        price="gi_patch",
        success_url=f"{APP_ORIGIN}/done",
        cancel_url=f"{APP_ORIGIN}/billing",
        email=account.email,
    )
    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_new_checkout_session_expires_the_open_ones(billing, account) -> None:
    first = await checkout(account)
    second = await checkout(account)

    assert (await billing.stripe.v1.checkout.sessions.retrieve_async(first)).status == "expired"
    assert (await billing.stripe.v1.checkout.sessions.retrieve_async(second)).status == "open"


async def test_a_portal_session_returns_only_to_an_allowed_origin(account) -> None:
    await account.customer_id()

    reply = await account.call("CreatePortalSession", return_url=f"{APP_ORIGIN}/billing")

    assert reply.url.startswith("https://")
    refused = await account.refused("CreatePortalSession", return_url="https://evil.example/")
    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT
