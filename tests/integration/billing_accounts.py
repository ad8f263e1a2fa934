"""Billing's subscription tests drive it as the apps do: an `Account` (one principal calling
through the gateway's credential) against a billing server with the session's database and
Stripe, and Stripe's events delivered as the webhooks relay delivers them."""

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
import stripe
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc, pause_pb2

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.billing.grpc_api import GATEWAY, WEBHOOKS_RELAY, start_billing_server
from services.billing.privacy.inbox import InboxClient
from services.billing.settings import BillingRules, DisputePolicy
from tests.harness import APP_ORIGIN, BillingHandle

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
async def billing_server(
    billing: BillingHandle,
    *,
    trial_days: int,
    dispute_policy: DisputePolicy = "keep",
    payment_method_types: tuple[str, ...] = (),
    stripe_client: stripe.StripeClient | None = None,
    inbox: InboxClient | None = None,
    pause_behaviors: frozenset[str] | None = None,
) -> AsyncIterator[Stub]:
    """Billing on the session's database and emulator, with these rules: redirects to the app's
    origin, a trial of `trial_days`, entitlements readable by the `classes` service too, the
    `dispute_policy` for subscriptions, the `payment_method_types` offered (none: the
    dashboard's), the `pause_behaviors` the app may ask for (the setting's default when None);
    on the session's inbox (or `inbox`) and Stripe (or `stripe_client`)."""
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=billing.engine,
        stripe_client=stripe_client or billing.stripe,
        inbox=inbox or billing.inbox,
        service_secrets={**billing.service_secrets, **SECRETS},
        rules=BillingRules(
            allowed_redirect_origins=frozenset({APP_ORIGIN}),
            trial_days=trial_days,
            past_due_grace_days=7,
            entitlement_callers=frozenset({CLASSES}),
            test_clock_prefix=billing.stripe_target.test_clock_prefix,
            dispute_policy=dispute_policy,
            payment_method_types=payment_method_types,
            pause_behaviors=pause_behaviors or BillingRules().pause_behaviors,
        ),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield billing_pb2_grpc.BillingServiceStub(channel)
    finally:
        await server.stop(0)


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
        name = f"{method}Request"
        request = getattr(billing_pb2, name, None) or getattr(pause_pb2, name)
        request = request(**fields)
        return await rpc(request, metadata=self.metadata)

    async def refused(self, method: str, **fields: Any) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await self.call(method, **fields)
        return refused.value

    async def customer_id(self) -> str:
        reply = await self.call("CreateCustomer", email=self.email, name="Ana")
        return reply.customer.stripe_customer_id

    async def subscribe(self, lookup_key: str = "basic_monthly", **fields: Any) -> Any:
        """CreateSubscription (PaymentSheet) and what the app does with the sheet: pay the first
        payment, or save the card a trial needs, with a test card; then apply what Stripe sends."""
        created = await self.call(
            "CreateSubscription", price=lookup_key, email=self.email, name="Ana", **fields
        )
        intent_id = created.client_secret.partition("_secret_")[0]
        stripe = self.billing.stripe.v1
        if created.intent_type == "payment_intent":
            await stripe.payment_intents.confirm_async(
                intent_id, params={"payment_method": "pm_card_visa"}
            )
        elif created.intent_type == "setup_intent":
            await stripe.setup_intents.confirm_async(
                intent_id, params={"payment_method": "pm_card_visa"}
            )
        if created.intent_type:
            await apply_events(self.billing, self.stub, created.subscription.id)
        return created

    async def subscription(self, subscription_id: str) -> billing_pb2.Subscription:
        return (await self.call("GetSubscription", id=subscription_id)).subscription

    async def features(self) -> set[str]:
        reply = await self.call("ListEntitlements")
        return {e.feature for e in reply.entitlements}


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


# --- Checkout and cards ------------------------------------------------------------------------


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


async def add_card(billing: BillingHandle, customer_id: str, card: str = "pm_card_visa") -> str:
    payment_method = await billing.stripe.v1.payment_methods.attach_async(
        card, params={"customer": customer_id}
    )
    return payment_method.id
