"""Subscribing, managing subscriptions, payments and entitlements over real gRPC: a billing server
on a loopback port, real Postgres, the Stripe emulator through the real SDK, and Stripe's events
applied as the webhooks relay delivers them."""

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.billing.grpc_api import GATEWAY, WEBHOOKS_RELAY, start_billing_server
from services.billing.models import invoices
from services.billing.settings import BillingRules
from services.common.rpc import reason_of
from tests.conftest import APP_ORIGIN, BillingHandle

TRIAL_DAYS = 30
CLASSES, REPORTING = "classes", "reporting"  # internal services: one may read entitlements
SECRETS = {name: secrets.token_urlsafe(32) for name in (WEBHOOKS_RELAY, CLASSES)}
RELAY = ServiceCredentials(WEBHOOKS_RELAY, SECRETS[WEBHOOKS_RELAY], audience="billing")
MOBILE_STRIPE_VERSION = "2020-08-27"
BASIC_FEATURES = {"class_booking", "attendance_history"}
PRO_ONLY = {"belt_tracking", "video_library"}
Outcome = billing_pb2.ApplyStripeEventResponse
Stub = billing_pb2_grpc.BillingServiceStub


@asynccontextmanager
async def billing_server(billing: BillingHandle, *, trial_days: int) -> AsyncIterator[Stub]:
    """Billing on the session's database and emulator, with these rules: redirects to the app's
    origin, a trial of `trial_days`, entitlements readable by the `classes` service too."""
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=billing.engine,
        stripe_client=billing.stripe,
        service_secrets={**billing.service_secrets, **SECRETS},
        rules=BillingRules(
            allowed_redirect_origins=frozenset({APP_ORIGIN}),
            trial_days=trial_days,
            past_due_grace_days=7,
            entitlement_callers=frozenset({CLASSES}),
            test_clock_prefix=billing.stripe_target.test_clock_prefix,
        ),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield billing_pb2_grpc.BillingServiceStub(channel)
    finally:
        await server.stop(0)


@pytest.fixture(scope="module")
async def stub(billing: BillingHandle) -> AsyncIterator[Stub]:
    async with billing_server(billing, trial_days=TRIAL_DAYS) as stub:
        yield stub


@pytest.fixture(scope="module")
async def no_trial(billing: BillingHandle) -> AsyncIterator[Stub]:
    """The same billing with BILLING_TRIAL_DAYS=0, for paid-from-day-one flows."""
    async with billing_server(billing, trial_days=0) as stub:
        yield stub


class Account:
    """One principal of the apps, calling billing through the gateway's credential."""

    def __init__(self, billing: BillingHandle, stub: Stub) -> None:
        self.billing, self.stub = billing, stub
        self.principal = Principal("user", "user_" + secrets.token_hex(6))
        self.email = f"{self.principal.id}@example.com"
        gateway = ServiceCredentials(GATEWAY, billing.gateway_secret, audience="billing")
        self.metadata = gateway.metadata(self.principal)

    async def call(self, method: str, **fields: Any) -> Any:
        rpc = getattr(self.stub, method)
        request = getattr(billing_pb2, f"{method}Request")(**fields)
        return await rpc(request, metadata=self.metadata)

    async def refused(self, method: str, **fields: Any) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await self.call(method, **fields)
        return refused.value

    async def customer_id(self) -> str:
        reply = await self.call("CreateCustomer", email=self.email, name="Ana")
        return reply.customer.stripe_customer_id

    async def subscribe(self, lookup_key: str = "basic_monthly", **fields: Any) -> Any:
        """CreateSubscription (PaymentSheet) and, when a first payment is due, pay it as the
        app would (confirm with a test card) and apply what Stripe then sends."""
        created = await self.call(
            "CreateSubscription", price=lookup_key, email=self.email, name="Ana", **fields
        )
        if created.intent_type == "payment_intent":
            intent_id = created.client_secret.partition("_secret_")[0]
            await self.billing.stripe.v1.payment_intents.confirm_async(
                intent_id, params={"payment_method": "pm_card_visa"}
            )
            await apply_events(self.billing, self.stub, created.subscription.id)
        return created

    async def subscription(self, subscription_id: str) -> billing_pb2.Subscription:
        return (await self.call("GetSubscription", id=subscription_id)).subscription

    async def features(self) -> set[str]:
        reply = await self.call("ListEntitlements")
        return {e.feature for e in reply.entitlements}


@pytest.fixture
def account(billing: BillingHandle, stub: Stub) -> Account:
    return Account(billing, stub)


@pytest.fixture
def paying(billing: BillingHandle, no_trial: Stub) -> Account:
    """An account of the billing without trials: every subscription is paid at once."""
    return Account(billing, no_trial)


# --- Stripe and its events ---------------------------------------------------------------------


async def stripe_json(billing: BillingHandle, method: str, path: str, **params: Any) -> Any:
    response = await billing.stripe.raw_request_async(method, path, **params)
    return json.loads(response.body)


async def events_about(billing: BillingHandle, object_ids: set[str]) -> list[dict[str, Any]]:
    """Every event the emulator recorded about these objects, or about objects referring to them
    (invoices and schedules of a subscription), oldest first (Stripe lists newest first)."""
    found, params = [], {"limit": 100}
    while True:
        page = await stripe_json(billing, "get", "/v1/events", **params)
        for event in page["data"]:
            obj = event["data"]["object"]
            refers = {obj.get("id"), obj.get("subscription"), obj.get("released_subscription")}
            parent = (obj.get("parent") or {}).get("subscription_details") or {}
            if (refers | {parent.get("subscription")}) & object_ids:
                found.append(event)
        if not page["has_more"]:
            return found[::-1]
        params["starting_after"] = page["data"][-1]["id"]


async def apply_events(billing: BillingHandle, stub: Stub, *object_ids: str) -> list[int]:
    """Deliver the events about these objects to billing, as the relay does (applied ones come
    back as duplicates)."""
    outcomes = []
    for event in await events_about(billing, set(object_ids)):
        request = billing_pb2.ApplyStripeEventRequest(
            event_id=event["id"], type=event["type"], payload=json.dumps(event).encode()
        )
        reply = await stub.ApplyStripeEvent(request, metadata=RELAY.metadata(None))
        outcomes.append(reply.outcome)
    return outcomes


async def stripe_subscription_ids(billing: BillingHandle, customer_id: str) -> set[str]:
    listed = await billing.stripe.v1.subscriptions.list_async(
        params={"customer": customer_id, "status": "all", "limit": 100}
    )
    return {s.id for s in listed.data}


async def price_id(billing: BillingHandle, lookup_key: str) -> str:
    listed = await billing.stripe.v1.prices.list_async(params={"lookup_keys": [lookup_key]})
    return listed.data[0].id


async def end_period(billing: BillingHandle, stub: Stub, subscription_id: str) -> None:
    """Let the subscription's current period end in the emulator (a test clock's job), then
    deliver what Stripe sent about it."""
    await billing.stripe_target.end_period(billing.stripe, subscription_id)
    await apply_events(billing, stub, subscription_id)


def seconds(value: datetime) -> int:
    return int(value.timestamp())


# --- Checkout (web) ----------------------------------------------------------------------------


async def checkout(account: Account, lookup_key: str = "pro_monthly") -> str:
    reply = await account.call(
        "CreateCheckoutSession",
        price=lookup_key,
        success_url=f"{APP_ORIGIN}/billing/done?plan=pro",
        cancel_url=f"{APP_ORIGIN}/billing",
        email=account.email,
        name="Ana",
    )
    return reply.session_id


async def complete(billing: BillingHandle, session_id: str, card: str = "pm_card_visa") -> dict:
    """Pay on Checkout's page."""
    return await billing.stripe_target.complete_checkout(session_id, card)


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

    assert reply.url == session.url and reply.url.startswith("https://")
    assert session.mode == "subscription" and session.status == "open"
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
    assert again and set(again) == {Outcome.OUTCOME_DUPLICATE}


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

    assert reply.status == "open" and not reply.HasField("subscription")


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
    billing, account, success_url
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


# --- PaymentSheet (mobile) -----------------------------------------------------------------------


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


async def test_the_trial_goes_to_the_first_subscription_only(billing, stub, account) -> None:
    first = await account.call("CreateSubscription", price="basic_monthly", email=account.email)
    assert (first.trial_applied, first.subscription.status) == (True, "trialing")
    assert first.intent_type == "setup_intent" and first.client_secret.startswith("seti_")
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
    billing, stub, account
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


# --- Changing plans --------------------------------------------------------------------------------


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
    assert renewed.price_id == basic and not renewed.scheduled_price_id
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


async def test_a_preview_shows_the_proration_an_upgrade_bills(billing, paying) -> None:
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

    assert now.takes_effect == "now" and now.currency == "usd"
    assert all(line.proration for line in now.lines) and len(now.lines) == 2
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


# --- Cancelling and resuming ------------------------------------------------------------------------


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


async def test_cancelling_drops_a_pending_downgrade(billing, paying) -> None:
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


# --- Invoices, payment methods, one-time payments --------------------------------------------------


async def test_invoices_are_listed_from_the_mirror_with_amounts_and_links(paying) -> None:
    created = await paying.subscribe("pro_monthly")

    [invoice] = (await paying.call("ListInvoices")).invoices

    assert invoice.subscription_id == created.subscription.id
    assert (invoice.status, invoice.currency) == ("paid", "usd")
    assert (invoice.amount_due, invoice.amount_paid, invoice.amount_remaining) == (3900, 3900, 0)
    assert invoice.hosted_invoice_url.startswith("https://")
    assert invoice.invoice_pdf.startswith("https://") and invoice.number


async def add_card(billing: BillingHandle, customer_id: str, card: str = "pm_card_visa") -> str:
    payment_method = await billing.stripe.v1.payment_methods.attach_async(
        card, params={"customer": customer_id}
    )
    return payment_method.id


async def test_payment_methods_list_marks_the_default_which_can_be_changed(
    billing, account
) -> None:
    customer_id = await account.customer_id()
    first, second = await add_card(billing, customer_id), await add_card(billing, customer_id)
    await account.call("SetDefaultPaymentMethod", id=first)

    reply = await account.call("SetDefaultPaymentMethod", id=second)

    assert (reply.payment_method.id, reply.payment_method.is_default) == (second, True)
    listed = {
        pm.id: pm.is_default for pm in (await account.call("ListPaymentMethods")).payment_methods
    }
    assert listed == {first: False, second: True}
    customer = await billing.stripe.v1.customers.retrieve_async(customer_id)
    assert customer.invoice_settings.default_payment_method == second


async def test_the_default_card_also_pays_the_live_subscription(billing, paying) -> None:
    created = await paying.subscribe("basic_monthly")
    card = await add_card(billing, created.stripe_customer_id)

    await paying.call("SetDefaultPaymentMethod", id=card)

    subscription = await billing.stripe.v1.subscriptions.retrieve_async(created.subscription.id)
    assert subscription.default_payment_method == card


async def test_a_detached_card_is_no_longer_listed(billing, account) -> None:
    customer_id = await account.customer_id()
    card = await add_card(billing, customer_id)

    await account.call("DetachPaymentMethod", id=card)

    assert list((await account.call("ListPaymentMethods")).payment_methods) == []


async def test_a_one_time_payment_amount_comes_from_the_catalog(billing, account) -> None:
    await account.customer_id()

    reply = await account.call("CreatePayment", price="gi_patch", quantity=3)

    assert (reply.amount, reply.currency) == (3 * 1500, "usd")
    intent = await billing.stripe.v1.payment_intents.retrieve_async(reply.payment_intent_id)
    assert (intent.amount, intent.customer) == (4500, reply.stripe_customer_id)
    assert intent.metadata["tatame_principal"] == account.principal.key
    assert intent.metadata["tatame_price"] == await price_id(billing, "gi_patch")
    assert reply.client_secret == intent.client_secret
    recurring = await account.refused("CreatePayment", price="basic_monthly")
    assert recurring.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_payment_tools_need_the_customer_first(account) -> None:
    for method, fields in (
        ("CreatePortalSession", {"return_url": f"{APP_ORIGIN}/billing"}),
        ("CreatePayment", {"price": "gi_patch"}),
        ("CreateSetupIntent", {}),
        ("CreateEphemeralKey", {"stripe_version": MOBILE_STRIPE_VERSION}),
    ):
        refused = await account.refused(method, **fields)
        assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION, method
        assert reason_of(refused) == "customer_required", method


async def test_setup_intents_and_ephemeral_keys_are_for_the_principals_customer(
    billing, account
) -> None:
    customer_id = await account.customer_id()

    intent = await account.call("CreateSetupIntent")
    key = await account.call("CreateEphemeralKey", stripe_version=MOBILE_STRIPE_VERSION)

    setup_intent = await billing.stripe.v1.setup_intents.retrieve_async(intent.setup_intent_id)
    assert (setup_intent.customer, intent.stripe_customer_id) == (customer_id, customer_id)
    assert intent.client_secret == setup_intent.client_secret
    assert key.secret.startswith("ek_") and key.stripe_customer_id == customer_id
    assert key.expire_time.seconds > datetime.now(UTC).timestamp()
    made_for = await billing.stripe_target.ephemeral_key_version(key.secret)
    assert made_for == MOBILE_STRIPE_VERSION  # the mobile SDK's, not billing's
    bad = await account.refused("CreateEphemeralKey", stripe_version="latest")
    assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT


# --- One principal never reaches another's -----------------------------------------------------------


async def test_a_second_principal_gets_not_found_for_every_id_of_the_first(
    billing, stub, paying
) -> None:
    created = await paying.subscribe("pro_monthly")
    card = (await paying.call("ListPaymentMethods")).payment_methods[0].id
    session_id = await checkout(Account(billing, stub))  # another account's session
    other = Account(billing, paying.stub)
    await other.customer_id()
    subscription_id = created.subscription.id

    for method, fields in (
        ("GetSubscription", {"id": subscription_id}),
        ("PreviewSubscriptionChange", {"id": subscription_id, "price": "basic_monthly"}),
        (
            "UpdateSubscription",
            {"id": subscription_id, "price": "basic_monthly", "proration_behavior": 1},
        ),
        ("CancelSubscription", {"id": subscription_id, "immediately": True}),
        ("ResumeSubscription", {"id": subscription_id}),
        ("SetDefaultPaymentMethod", {"id": card}),
        ("DetachPaymentMethod", {"id": card}),
        ("ConfirmCheckoutSession", {"session_id": session_id}),
    ):
        refused = await other.refused(method, **fields)
        assert refused.code() is grpc.StatusCode.NOT_FOUND, method

    assert list((await other.call("ListInvoices")).invoices) == []
    assert list((await other.call("ListSubscriptions")).subscriptions) == []
    assert list((await other.call("ListPaymentMethods")).payment_methods) == []
    # And nothing of the first changed.
    assert (await paying.subscription(subscription_id)).status == "active"
    assert [pm.id for pm in (await paying.call("ListPaymentMethods")).payment_methods] == [card]


async def test_ids_of_nothing_are_not_found(account) -> None:
    await account.customer_id()
    for method, fields in (
        ("GetSubscription", {"id": "sub_missing"}),
        ("CancelSubscription", {"id": "sub_missing"}),
        ("DetachPaymentMethod", {"id": "pm_missing"}),
        ("ConfirmCheckoutSession", {"session_id": "cs_test_missing"}),
    ):
        refused = await account.refused(method, **fields)
        assert refused.code() is grpc.StatusCode.NOT_FOUND, method


# --- Entitlements and plans ---------------------------------------------------------------------


async def test_check_entitlement_answers_from_the_mirror(paying) -> None:
    created = await paying.subscribe("basic_monthly")

    entitled = await paying.call("CheckEntitlement", feature="class_booking")
    not_entitled = await paying.call("CheckEntitlement", feature="video_library")

    assert entitled.entitled is True
    assert entitled.entitlement.subscription_id == created.subscription.id
    assert entitled.entitlement.subscription_status == "active"
    assert not entitled.entitlement.HasField("grace_end_time")
    assert not_entitled.entitled is False and not not_entitled.HasField("entitlement")
    malformed = await paying.refused("CheckEntitlement", feature="")
    assert malformed.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_past_due_keeps_the_features_for_the_grace_period_from_when_it_began(
    billing, no_trial, paying
) -> None:
    created = await paying.subscribe("basic_monthly")
    failing = await add_card(billing, created.stripe_customer_id, "pm_card_chargeCustomerFail")
    await paying.call("SetDefaultPaymentMethod", id=failing)

    await end_period(billing, no_trial, created.subscription.id)  # the renewal is declined

    assert (await paying.subscription(created.subscription.id)).status == "past_due"
    became_past_due = next(
        event["created"]
        for event in await events_about(billing, {created.subscription.id})
        if event["type"] == "customer.subscription.updated"
        and event["data"]["object"]["status"] == "past_due"
    )
    reply = await paying.call("CheckEntitlement", feature="class_booking")
    assert reply.entitled is True
    assert reply.entitlement.subscription_status == "past_due"
    assert reply.entitlement.grace_end_time.seconds == became_past_due + 7 * 86400


async def test_entitlements_are_open_to_the_configured_internal_services_only(
    billing, paying
) -> None:
    await paying.subscribe("basic_monthly")
    request = billing_pb2.CheckEntitlementRequest(feature="class_booking")
    classes = ServiceCredentials(CLASSES, SECRETS[CLASSES], audience="billing")
    reporting = ServiceCredentials(
        REPORTING, billing.service_secrets[REPORTING], audience="billing"
    )

    reply = await paying.stub.CheckEntitlement(request, metadata=classes.metadata(paying.principal))

    assert reply.entitled is True
    for caller in (reporting, RELAY):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await paying.stub.CheckEntitlement(request, metadata=caller.metadata(paying.principal))
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # entitlements only
        await paying.stub.ListInvoices(
            billing_pb2.ListInvoicesRequest(), metadata=classes.metadata(paying.principal)
        )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_plans_carry_entitlements_default_price_and_one_time_prices_when_asked(
    account,
) -> None:
    recurring = {p.name: p for p in (await account.call("ListPlans")).plans}
    everything = {p.name: p for p in (await account.call("ListPlans", include_one_time=True)).plans}

    pro = recurring["Tatame Pro"]
    assert set(pro.entitlements) == BASIC_FEATURES | PRO_ONLY
    assert pro.metadata["catalog_key"] == "tatame_pro"
    assert pro.default_price_id == next(p.id for p in pro.prices if p.lookup_key == "pro_monthly")
    assert {p.type for p in pro.prices} == {"recurring"}
    assert "Gi Patch" not in recurring
    [patch] = everything["Gi Patch"].prices
    assert (patch.type, patch.unit_amount, patch.interval) == (
        "one_time",
        1500,
        billing_pb2.INTERVAL_UNSPECIFIED,
    )
