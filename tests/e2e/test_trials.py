"""Trials that need a card (BILLING_TRIAL_REQUIRES_PAYMENT_METHOD), through the REST edge as the
mobile app's PaymentSheet flow uses it, with Stripe's events on the webhook path and time moved
by test clocks: an abandoned sheet grants nothing and blocks nothing, a saved card grants the
trial, and a trial that ends without one is canceled instead of invoiced. With the setting off,
a card-less trial grants and blocks as it always did."""

import secrets
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from gateway.app import create_app
from services.billing.grpc_api import start_billing_server
from services.billing.settings import BillingRules
from services.common.db import create_engine
from tests.e2e.gateway_client import GatewayHandle, TokenIssuer, User, assert_error
from tests.e2e.test_subscriptions_api import MOBILE_STRIPE_VERSION, features, subscription_status
from tests.e2e.webhook_pipeline import eventually
from tests.harness import APP_ORIGIN, BillingHandle, serve_on_loopback

BASIC = {"class_booking", "attendance_history"}
PRO = BASIC | {"belt_tracking", "video_library"}
DAY_SECONDS = 86_400


def intent_id(client_secret: str) -> str:
    return client_secret.partition("_secret_")[0]


async def start(client: httpx.AsyncClient, user: User, price: str) -> httpx.Response:
    """What the app sends before it shows PaymentSheet."""
    return await client.post(
        "/v1/subscriptions",
        json={"price": price, "stripe_version": MOBILE_STRIPE_VERSION},
        headers=user.headers,
    )


async def end_behavior(billing: BillingHandle, subscription_id: str) -> str:
    """Stripe's `trial_settings.end_behavior.missing_payment_method` of a subscription."""
    subscription = await billing.stripe.v1.subscriptions.retrieve_async(subscription_id)
    assert subscription.trial_settings is not None
    return subscription.trial_settings.end_behavior.missing_payment_method


def trial_end(created: httpx.Response) -> int:
    return int(datetime.fromisoformat(created.json()["subscription"]["trial_end"]).timestamp())


@pytest.mark.usefixtures("webhook_pipeline")
async def test_an_abandoned_trial_sheet_grants_nothing_blocks_nothing_and_a_saved_card_grants(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    abandoned = await start(client, user, "basic_monthly")
    assert abandoned.status_code == 201, abandoned.text
    first = abandoned.json()
    assert (first["trial_applied"], first["intent_type"]) == (True, "setup_intent")
    assert first["subscription"]["status"] == "trialing"
    assert await features(client, user) == set()  # no card saved: the trial grants nothing
    assert await end_behavior(billing, first["subscription"]["id"]) == "cancel"

    # The user comes back and picks another plan: the card-less trial is replaced, not a 409,
    # and the new one keeps what was left of the trial.
    other_plan = await start(client, user, "pro_monthly")
    assert other_plan.status_code == 201, other_plan.text
    replacement = other_plan.json()
    assert replacement["subscription"]["id"] != first["subscription"]["id"]
    assert (replacement["trial_applied"], replacement["intent_type"]) == (True, "setup_intent")
    assert 0 <= trial_end(other_plan) - trial_end(abandoned) <= DAY_SECONDS
    assert await subscription_status(client, user, first["subscription"]["id"]) == "canceled"
    # The same plan again: the same subscription and setup intent are handed back.
    again = await start(client, user, "pro_monthly")
    assert again.status_code == 201, again.text
    assert again.json()["subscription"]["id"] == replacement["subscription"]["id"]
    assert again.json()["client_secret"] == replacement["client_secret"]
    assert await features(client, user) == set()

    # PaymentSheet saves the card: the setup intent succeeds in Stripe, and its events (the
    # subscription's default payment method) come through the webhook path.
    await billing.stripe.v1.setup_intents.confirm_async(
        intent_id(replacement["client_secret"]), params={"payment_method": "pm_card_visa"}
    )

    async def entitled() -> bool:
        return await features(client, user) == PRO

    await eventually(entitled)
    assert await subscription_status(client, user, replacement["subscription"]["id"]) == "trialing"
    # A trial with its card is live: it blocks another start as any live subscription does.
    assert_error(await start(client, user, "basic_monthly"), 409, "live_subscription_exists")


@pytest.mark.usefixtures("webhook_pipeline")
async def test_a_trial_that_ends_without_a_card_is_canceled_instead_of_invoiced(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    created = await start(client, user, "basic_monthly")
    assert created.status_code == 201, created.text
    subscription_id = created.json()["subscription"]["id"]

    await billing.stripe_target.end_period(billing.stripe, subscription_id)

    async def canceled() -> bool:
        return await subscription_status(client, user, subscription_id) == "canceled"

    await eventually(canceled)
    assert await features(client, user) == set()
    invoices = (await client.get("/v1/invoices", headers=user.headers)).json()["invoices"]
    assert invoices == []  # nothing billed: only the trial's $0 invoice exists, unlisted
    # The trial was the principal's one: the next start pays from the first day.
    paid = await start(client, user, "basic_monthly")
    assert paid.status_code == 201, paid.text
    assert (paid.json()["trial_applied"], paid.json()["intent_type"]) == (False, "payment_intent")


@pytest.fixture(scope="module")
async def cardless_trials(
    billing: BillingHandle, billing_database_url: str, gateway: GatewayHandle
) -> AsyncIterator[str]:
    """Another billing server on the same database and Stripe, with
    BILLING_TRIAL_REQUIRES_PAYMENT_METHOD=false, behind its own gateway (its URL)."""
    engine = create_engine(billing_database_url, pool_size=2)
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=engine,
        stripe_client=billing.stripe,
        service_secrets=billing.service_secrets,
        rules=BillingRules(
            allowed_redirect_origins=frozenset({APP_ORIGIN}),
            trial_requires_payment_method=False,
            test_clock_prefix=billing.stripe_target.test_clock_prefix,
        ),
    )
    settings = gateway.settings.model_copy(
        update={"billing_target": f"127.0.0.1:{server.port}", "gateway_customer_cache_seconds": 0}
    )
    http_server, task, port = await serve_on_loopback(create_app(settings))
    yield f"http://127.0.0.1:{port}"
    http_server.should_exit = True
    await task
    await server.stop(0)
    await engine.dispose()


@pytest.mark.usefixtures("webhook_pipeline")
async def test_with_the_setting_off_a_card_less_trial_grants_blocks_and_is_invoiced_at_its_end(
    cardless_trials: str, issuer: TokenIssuer, billing: BillingHandle
) -> None:
    async with httpx.AsyncClient(base_url=cardless_trials, timeout=30) as client:
        user_id = "user_" + secrets.token_hex(6)
        headers = issuer.headers(user_id)
        made = await client.post(
            "/v1/customer", json={"email": f"{user_id}@example.com"}, headers=headers
        )
        assert made.status_code == 201, made.text
        user = User(user_id, headers, made.json()["stripe_customer_id"])
        created = await start(client, user, "basic_monthly")
        assert created.status_code == 201, created.text
        subscription_id = created.json()["subscription"]["id"]

        assert await features(client, user) == BASIC
        assert_error(await start(client, user, "pro_monthly"), 409, "live_subscription_exists")
        assert await end_behavior(billing, subscription_id) == "create_invoice"

        await billing.stripe_target.end_period(billing.stripe, subscription_id)

        async def past_due() -> bool:  # invoiced, with no card to charge
            return await subscription_status(client, user, subscription_id) == "past_due"

        await eventually(past_due)
