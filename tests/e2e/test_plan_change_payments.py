"""Upgrades that must be paid first, and the billing screen (`GET /v1/billing`), through the REST
edge: the real billing service, the Stripe emulator over HTTP and the webhook path (receiver →
relay → billing) that applies a change once its payment goes through."""

from typing import Any

import httpx
import pytest

from tests.e2e.gateway_client import User, assert_error
from tests.e2e.webhook_pipeline import eventually
from tests.harness import BillingHandle

pytestmark = pytest.mark.usefixtures("webhook_pipeline")

CARD_LAST4 = {"pm_card_chargeCustomerFail": "0341", "pm_card_authenticationRequired": "3184"}


def payment_intent_id(client_secret: str) -> str:
    return client_secret.split("_secret_")[0]


async def overview(client: httpx.AsyncClient, user: User) -> dict[str, Any]:
    response = await client.get("/v1/billing", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def features(client: httpx.AsyncClient, user: User) -> set[str]:
    return {e["feature"] for e in (await overview(client, user))["entitlements"]}


async def paying_with(
    client: httpx.AsyncClient, user: User, billing: BillingHandle, card: str
) -> str:
    """The user's active, paid basic_monthly subscription (its trial used up by a first one),
    paid through PaymentSheet with pm_card_visa, whose default card is then `card` (attached
    and made the default through the app's route); its id once the mirror shows it all."""
    trial = await client.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=user.headers
    )
    await client.post(
        f"/v1/subscriptions/{trial.json()['subscription']['id']}/cancel",
        json={"immediately": True},
        headers=user.headers,
    )
    paid = await client.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=user.headers
    )
    assert paid.status_code == 201, paid.text
    await billing.stripe.v1.payment_intents.confirm_async(
        payment_intent_id(paid.json()["client_secret"]), params={"payment_method": "pm_card_visa"}
    )
    method = await billing.stripe.v1.payment_methods.attach_async(
        card, params={"customer": user.customer_id}
    )
    made = await client.post(f"/v1/payment-methods/{method.id}/default", headers=user.headers)
    assert made.status_code == 200, made.text

    async def settled() -> bool:
        shown = await overview(client, user)
        card_shown = shown["default_payment_method"] or {}
        subscription = shown["subscription"] or {}
        return subscription.get("status") == "active" and card_shown.get("id") == method.id

    await eventually(settled, within=60)
    return str(paid.json()["subscription"]["id"])


async def upgrade(client: httpx.AsyncClient, user: User, subscription_id: str) -> httpx.Response:
    return await client.patch(
        f"/v1/subscriptions/{subscription_id}",
        json={"price": "pro_monthly", "proration_behavior": "always_invoice"},
        headers=user.headers,
    )


async def test_an_upgrade_whose_payment_is_declined_is_not_applied_until_paid(
    client, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    subscription_id = await paying_with(client, user, billing, "pm_card_chargeCustomerFail")
    basic = (await overview(client, user))["subscription"]["price_id"]

    declined = await upgrade(client, user, subscription_id)

    assert declined.status_code == 200, declined.text
    body = declined.json()
    assert body["takes_effect"] == "after_payment"
    assert body["effective_at"] is None
    payment = body["payment"]
    assert payment["action"] == "pay"
    assert payment["decline_reason"] == "card_declined"
    assert payment["client_secret"]
    assert payment["amount_due"] > 0
    assert body["subscription"]["price_id"] == basic  # the old plan stays
    pending = body["subscription"]["pending_update"]
    assert pending["price_id"] != basic
    assert "video_library" not in await features(client, user)

    screen = await overview(client, user)
    assert screen["subscription"]["price_id"] == basic
    assert screen["subscription"]["pending_update"]["price_id"] == pending["price_id"]
    assert screen["invoice_action"]["action"] == "pay"
    assert screen["invoice_action"]["invoice"]["id"] == payment["invoice_id"]
    assert screen["default_payment_method"]["card_last4"] == "0341"

    # Another change waits for this one; asking for it again answers it again.
    assert_error(
        await client.patch(
            f"/v1/subscriptions/{subscription_id}",
            json={"price": "pro_yearly", "proration_behavior": "always_invoice"},
            headers=user.headers,
        ),
        400,
        "subscription_update_pending",
    )
    again = await upgrade(client, user, subscription_id)
    assert again.status_code == 200, again.text
    assert again.json()["payment"]["invoice_id"] == payment["invoice_id"]

    # The app pays with another card (PaymentSheet, with the payment's client secret).
    await billing.stripe.v1.payment_intents.confirm_async(
        payment_intent_id(payment["client_secret"]), params={"payment_method": "pm_card_visa"}
    )

    async def applied() -> bool:
        shown = await overview(client, user)
        return (
            shown["subscription"]["price_id"] == pending["price_id"]
            and shown["subscription"]["pending_update"] is None
            and shown["invoice_action"] is None
        )

    await eventually(applied, within=60)
    assert "video_library" in await features(client, user)


async def test_an_unpaid_upgrade_expires_at_the_period_end_and_its_invoice_is_voided(
    client, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    subscription_id = await paying_with(client, user, billing, "pm_card_chargeCustomerFail")
    body = (await upgrade(client, user, subscription_id)).json()
    basic, unpaid = body["subscription"]["price_id"], body["payment"]["invoice_id"]
    assert body["subscription"]["pending_update"] is not None

    # Nobody pays: the period ends (the renewal is declined too, with the same card).
    await billing.stripe_target.end_period(billing.stripe, subscription_id)

    async def expired() -> bool:  # pending_update_expired, invoice.voided, the renewal's events
        shown = await overview(client, user)
        waiting = shown["invoice_action"] or {"invoice": {}}
        listed = (await client.get("/v1/invoices", headers=user.headers)).json()["invoices"]
        return (
            shown["subscription"]["pending_update"] is None
            and shown["subscription"]["status"] == "past_due"
            and waiting["invoice"].get("id") not in (None, unpaid)
            and {i["id"]: i["status"] for i in listed}[unpaid] == "void"
        )

    await eventually(expired, within=60)
    screen = await overview(client, user)
    assert screen["subscription"]["price_id"] == basic  # the upgrade was never applied
    assert "video_library" not in await features(client, user)


async def test_an_upgrade_that_needs_authentication_applies_through_the_webhook_once_answered(
    client, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    subscription_id = await paying_with(client, user, billing, "pm_card_authenticationRequired")

    waiting = await upgrade(client, user, subscription_id)

    assert waiting.status_code == 200, waiting.text
    body = waiting.json()
    assert body["takes_effect"] == "after_payment"
    assert body["payment"]["action"] == "authenticate"
    assert body["payment"]["decline_reason"] is None
    pending = body["subscription"]["pending_update"]
    assert pending is not None
    screen = await overview(client, user)
    assert screen["invoice_action"]["action"] == "authenticate"
    assert "video_library" not in await features(client, user)

    await billing.stripe_target.authenticate(payment_intent_id(body["payment"]["client_secret"]))

    async def applied() -> bool:  # the subscription's and the invoice's events
        shown = await overview(client, user)
        return (
            shown["subscription"]["price_id"] == pending["price_id"]
            and shown["subscription"]["pending_update"] is None
            and shown["invoice_action"] is None
        )

    await eventually(applied, within=60)
    assert "video_library" in await features(client, user)


async def test_the_billing_screen_in_each_state_of_a_subscription(
    client, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    assert await overview(client, user) == {
        "subscription": None,
        "plan": None,
        "entitlements": [],
        "invoice_action": None,
        "default_payment_method": None,
        "pending_payment": None,
    }

    created = await client.post(
        "/v1/subscriptions", json={"price": "pro_monthly"}, headers=user.headers
    )
    subscription_id = created.json()["subscription"]["id"]
    trialing = await overview(client, user)
    assert trialing["subscription"]["status"] == "trialing"
    assert trialing["subscription"]["trial_end"] is not None
    assert trialing["plan"]["prices"][0]["lookup_key"] == "pro_monthly"
    assert trialing["plan"]["name"]
    assert trialing["entitlements"] == []  # the trial waits for a card
    assert trialing["default_payment_method"] is None
    assert trialing["invoice_action"] is None  # the trial's invoice is paid ($0)
    method = await billing.stripe.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": user.customer_id}
    )
    made = await client.post(f"/v1/payment-methods/{method.id}/default", headers=user.headers)
    assert made.status_code == 200, made.text

    async def carded() -> bool:  # the card reaches the mirror through its webhooks
        shown = await overview(client, user)
        granted = {e["feature"] for e in shown["entitlements"]}
        return (
            "video_library" in granted
            and (shown["default_payment_method"] or {}).get("id") == method.id
        )

    await eventually(carded, within=60)

    downgraded = await client.patch(
        f"/v1/subscriptions/{subscription_id}",
        json={"price": "basic_monthly", "proration_behavior": "none"},
        headers=user.headers,
    )
    assert downgraded.status_code == 200, downgraded.text
    scheduled = (await overview(client, user))["subscription"]
    assert scheduled["scheduled_price_id"] is not None
    assert scheduled["scheduled_change_at"] == trialing["subscription"]["trial_end"]

    await client.patch(
        f"/v1/subscriptions/{subscription_id}",
        json={"price": "pro_monthly", "proration_behavior": "none"},
        headers=user.headers,
    )
    await client.post(f"/v1/subscriptions/{subscription_id}/cancel", headers=user.headers)
    canceling = (await overview(client, user))["subscription"]
    assert canceling["cancel_at_period_end"] is True
    assert canceling["scheduled_price_id"] is None

    await client.post(
        f"/v1/subscriptions/{subscription_id}/cancel",
        json={"immediately": True},
        headers=user.headers,
    )
    ended = await overview(client, user)
    assert ended["subscription"] is None
    assert ended["entitlements"] == []


async def test_an_unpaid_first_invoice_is_the_invoice_to_pay_until_a_new_start_replaces_it(
    client, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    trial = await client.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=user.headers
    )
    await client.post(
        f"/v1/subscriptions/{trial.json()['subscription']['id']}/cancel",
        json={"immediately": True},
        headers=user.headers,
    )
    unpaid = await client.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=user.headers
    )

    subscription_id = unpaid.json()["subscription"]["id"]

    async def shown() -> bool:  # the invoice reaches the mirror through its webhook
        return (await overview(client, user))["invoice_action"] is not None

    await eventually(shown, within=60)
    screen = await overview(client, user)
    assert screen["subscription"]["status"] == "incomplete"
    waiting = screen["invoice_action"]
    assert waiting["action"] == "pay"
    assert waiting["invoice"]["subscription_id"] == subscription_id
    assert waiting["invoice"]["status"] == "open"

    # The app starts again (another plan): the abandoned subscription is canceled, its invoice
    # left open by Stripe, and the new one is paid. Nothing is left to pay on the screen.
    again = await client.post(
        "/v1/subscriptions", json={"price": "pro_monthly"}, headers=user.headers
    )
    assert again.status_code == 201, again.text
    await billing.stripe.v1.payment_intents.confirm_async(
        payment_intent_id(again.json()["client_secret"]), params={"payment_method": "pm_card_visa"}
    )

    async def active() -> bool:
        shown = (await overview(client, user))["subscription"] or {}
        return shown.get("status") == "active"

    await eventually(active, within=60)
    abandoned = await billing.stripe.v1.invoices.retrieve_async(waiting["invoice"]["id"])
    assert abandoned.status == "open"
    screen = await overview(client, user)
    assert screen["subscription"]["id"] == again.json()["subscription"]["id"]
    assert screen["invoice_action"] is None
