"""Payments beyond cards through the REST edge: a boleto (the emulator's delayed payment method,
in `brl`) chosen in PaymentSheet or on Checkout's page grants nothing while its voucher waits,
and the billing screen says "waiting for payment" (`pending_payment`); paid, it grants; expired
unpaid, it ends as Stripe ends it (the purchase back to requires_payment_method, the first
invoice's subscription incomplete_expired 23 hours on, Checkout's async_payment_failed).
Stripe's events reach billing through the real webhook pipeline."""

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from stripe.params import PaymentIntentConfirmParamsPaymentMethodData, PaymentMethodCreateParams

from services.billing.catalog import sync_catalog
from tests.e2e.gateway_client import User
from tests.e2e.webhook_pipeline import eventually, scalar
from tests.harness import BillingHandle

pytestmark = pytest.mark.usefixtures("webhook_pipeline")

ADDRESS: Any = {
    "line1": "Av. Paulista, 1000",
    "city": "São Paulo",
    "state": "SP",
    "postal_code": "01310-100",
    "country": "BR",
}
PAYER: Any = {"name": "Maria Silva", "email": "maria@example.com", "address": ADDRESS}
TAX_ID = "000.000.000-00"  # a CPF
BOLETO: PaymentIntentConfirmParamsPaymentMethodData = {
    "type": "boleto",
    "boleto": {"tax_id": TAX_ID},
    "billing_details": PAYER,
}
SUCCESS_URL = "https://app.tatame.test/billing/done"
DAY = 24 * 60 * 60


@dataclass(frozen=True)
class BrazilianPlan:
    """A product sold in `brl` (monthly, and once), granting `feature`."""

    monthly: str
    once: str
    feature: str


@pytest.fixture
async def plan(billing: BillingHandle) -> AsyncIterator[BrazilianPlan]:
    stripe = billing.stripe
    feature = "jiu_jitsu_" + secrets.token_hex(4)
    product = await stripe.v1.products.create_async(
        params={"name": "Plano " + feature, "metadata": {"features": feature}}
    )
    monthly = await stripe.v1.prices.create_async(
        params={
            "product": product.id,
            "currency": "brl",
            "unit_amount": 9900,
            "recurring": {"interval": "month"},
        }
    )
    once = await stripe.v1.prices.create_async(
        params={"product": product.id, "currency": "brl", "unit_amount": 4990}
    )
    await sync_catalog(engine=billing.engine, stripe_client=stripe)
    try:
        yield BrazilianPlan(monthly.id, once.id, feature)
    finally:
        await stripe.v1.products.update_async(product.id, params={"active": False})
        await sync_catalog(engine=billing.engine, stripe_client=stripe)


async def overview(client: httpx.AsyncClient, user: User) -> dict[str, Any]:
    got = await client.get("/v1/billing", headers=user.headers)
    assert got.status_code == 200, got.text
    return got.json()


def granted(screen: dict[str, Any], feature: str) -> bool:
    return feature in {e["feature"] for e in screen["entitlements"]}


async def returning(client: httpx.AsyncClient, billing: BillingHandle, user: User, price: str):
    """Make `user` a returning customer (no second free trial): a first subscription, ended."""
    created = await client.post("/v1/subscriptions", json={"price": price}, headers=user.headers)
    assert created.status_code == 201, created.text
    await billing.stripe.v1.subscriptions.cancel_async(created.json()["subscription"]["id"])

    async def ended() -> bool:
        return (await overview(client, user))["subscription"] is None

    await eventually(ended)


async def waiting_screen(client: httpx.AsyncClient, user: User) -> dict[str, Any]:
    """The billing screen once it says "waiting for payment"."""

    async def waits() -> bool:
        return (await overview(client, user))["pending_payment"] is not None

    await eventually(waits)
    return await overview(client, user)


async def boleto_purchase_waiting(
    client: httpx.AsyncClient, user: User, billing: BillingHandle, plan: BrazilianPlan
) -> str:
    """The user's purchase of `plan.once`, paid by boleto: its PaymentIntent, once the billing
    screen says it waits for the voucher."""
    created = await client.post("/v1/payments", json={"price": plan.once}, headers=user.headers)
    assert created.status_code == 201, created.text
    intent_id = str(created.json()["id"])
    await billing.stripe.v1.payment_intents.confirm_async(
        intent_id, params={"payment_method_data": BOLETO}
    )
    await waiting_screen(client, user)
    return intent_id


async def test_a_boleto_purchase_grants_nothing_while_its_voucher_waits_and_its_feature_once_paid(
    client: httpx.AsyncClient, new_user, billing: BillingHandle, plan: BrazilianPlan
) -> None:
    user, stranger = await new_user(), await new_user()
    created = await client.post("/v1/payments", json={"price": plan.once}, headers=user.headers)
    assert created.status_code == 201, created.text
    intent_id = created.json()["id"]
    # PaymentSheet offers what the dashboard enables (dynamic payment methods): boleto in brl.
    intent = await billing.stripe.v1.payment_intents.retrieve_async(intent_id)
    assert sorted(intent.payment_method_types) == ["boleto", "card"]
    await billing.stripe.v1.payment_intents.confirm_async(
        intent_id, params={"payment_method_data": BOLETO}
    )

    screen = await waiting_screen(client, user)
    waiting = screen["pending_payment"]
    assert (waiting["method"], waiting["status"]) == ("boleto", "requires_action")
    assert (waiting["amount"], waiting["currency"], waiting["invoice_id"]) == (4990, "brl", None)
    assert waiting["payment_intent_id"] == intent_id
    assert waiting["hosted_voucher_url"].startswith("https://")
    assert waiting["expires_at"] is not None
    assert not granted(screen, plan.feature)
    assert (await overview(client, stranger))["pending_payment"] is None

    await billing.stripe_target.settle_boleto(intent_id, "pay")

    async def paid() -> bool:
        screen = await overview(client, user)
        return granted(screen, plan.feature) and screen["pending_payment"] is None

    await eventually(paid)


async def test_an_expired_boleto_purchase_grants_nothing_and_waits_no_more(
    client: httpx.AsyncClient,
    new_user,
    billing: BillingHandle,
    billing_database_url: str,
    plan: BrazilianPlan,
) -> None:
    user = await new_user()
    intent_id = await boleto_purchase_waiting(client, user, billing, plan)

    await billing.stripe_target.settle_boleto(intent_id, "expire")

    async def expired() -> bool:
        return (await overview(client, user))["pending_payment"] is None

    await eventually(expired)
    assert not granted(await overview(client, user), plan.feature)
    status = await scalar(
        billing_database_url,
        "SELECT status FROM billing.purchases WHERE id = %s",
        intent_id,
    )
    assert status == "requires_payment_method"


async def boleto_subscription(
    client: httpx.AsyncClient, billing: BillingHandle, user: User, plan: BrazilianPlan
) -> tuple[str, str]:
    """A returning customer subscribes in PaymentSheet and pays the first invoice by boleto:
    the subscription's id and the PaymentIntent waiting for the voucher."""
    await returning(client, billing, user, plan.monthly)
    created = await client.post(
        "/v1/subscriptions", json={"price": plan.monthly}, headers=user.headers
    )
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["intent_type"] == "payment_intent"
    intent_id = made["client_secret"].split("_secret_")[0]
    await billing.stripe.v1.payment_intents.confirm_async(
        intent_id, params={"payment_method_data": BOLETO}
    )
    return made["subscription"]["id"], intent_id


async def test_a_subscription_paid_by_boleto_waits_incomplete_then_grants_once_paid(
    client: httpx.AsyncClient, new_user, billing: BillingHandle, plan: BrazilianPlan
) -> None:
    user = await new_user()
    subscription_id, intent_id = await boleto_subscription(client, billing, user, plan)

    screen = await waiting_screen(client, user)
    assert (screen["subscription"]["id"], screen["subscription"]["status"]) == (
        subscription_id,
        "incomplete",
    )
    waiting = screen["pending_payment"]
    assert (waiting["method"], waiting["amount"], waiting["currency"]) == ("boleto", 9900, "brl")
    assert waiting["invoice_id"] == screen["invoice_action"]["invoice"]["id"]
    assert screen["invoice_action"]["action"] == "wait"
    assert not granted(screen, plan.feature)

    await billing.stripe_target.settle_boleto(intent_id, "pay")

    async def active() -> bool:
        screen = await overview(client, user)
        return screen["subscription"]["status"] == "active" and granted(screen, plan.feature)

    await eventually(active)
    screen = await overview(client, user)
    assert (screen["pending_payment"], screen["invoice_action"]) == (None, None)


async def test_a_subscription_whose_boleto_is_unpaid_ends_incomplete_expired_after_23_hours(
    client: httpx.AsyncClient, new_user, billing: BillingHandle, plan: BrazilianPlan
) -> None:
    user = await new_user()
    subscription_id, _ = await boleto_subscription(client, billing, user, plan)
    await waiting_screen(client, user)

    await billing.stripe_target.pass_time(billing.stripe, user.customer_id, DAY)

    async def expired() -> bool:
        listed = (await client.get("/v1/subscriptions", headers=user.headers)).json()
        statuses = {s["id"]: s["status"] for s in listed["subscriptions"]}
        return statuses.get(subscription_id) == "incomplete_expired"

    await eventually(expired)
    screen = await overview(client, user)
    assert (screen["subscription"], screen["pending_payment"]) == (None, None)
    assert not granted(screen, plan.feature)


async def test_checkout_paid_by_boleto_grants_on_async_payment_succeeded_and_not_when_it_failed(
    client: httpx.AsyncClient, new_user, billing: BillingHandle, plan: BrazilianPlan
) -> None:
    payer, defaulter = await new_user(), await new_user()
    intents = {}
    for user in (payer, defaulter):
        await returning(client, billing, user, plan.monthly)
        created = await client.post(
            "/v1/checkout/sessions",
            json={"price": plan.monthly, "success_url": SUCCESS_URL, "cancel_url": SUCCESS_URL},
            headers=user.headers,
        )
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
        params: PaymentMethodCreateParams = {
            "type": "boleto",
            "boleto": {"tax_id": TAX_ID},
            "billing_details": PAYER,
        }
        boleto = await billing.stripe.v1.payment_methods.create_async(params=params)
        completed = await billing.stripe_target.complete_checkout(session_id, boleto.id)
        assert completed["payment_status"] == "unpaid"
        confirmed = await client.post(
            f"/v1/checkout/sessions/{session_id}/confirm", headers=user.headers
        )
        assert confirmed.status_code == 200, confirmed.text
        assert (confirmed.json()["status"], confirmed.json()["payment_status"]) == (
            "complete",
            "unpaid",
        )
        assert confirmed.json()["subscription"]["status"] == "incomplete"
        screen = await waiting_screen(client, user)
        assert screen["subscription"]["status"] == "incomplete"
        assert not granted(screen, plan.feature)
        intents[user.id] = screen["pending_payment"]["payment_intent_id"]

    await billing.stripe_target.settle_boleto(intents[payer.id], "pay")
    await billing.stripe_target.settle_boleto(intents[defaulter.id], "expire")

    async def paid() -> bool:
        screen = await overview(client, payer)
        return screen["subscription"]["status"] == "active" and granted(screen, plan.feature)

    async def failed() -> bool:
        screen = await overview(client, defaulter)
        return screen["pending_payment"] is None

    await eventually(paid)
    await eventually(failed)
    screen = await overview(client, defaulter)
    assert screen["subscription"]["status"] == "incomplete"
    assert screen["invoice_action"]["action"] == "pay"
    assert not granted(screen, plan.feature)


async def test_erasing_a_payer_blanks_the_voucher_that_shows_their_name_and_cpf(
    client: httpx.AsyncClient,
    new_user,
    billing: BillingHandle,
    billing_database_url: str,
    plan: BrazilianPlan,
) -> None:
    user = await new_user()
    intent_id = await boleto_purchase_waiting(client, user, billing, plan)

    erased = await client.delete("/v1/me", headers=user.headers)

    assert erased.status_code == 200, erased.text
    voucher = await scalar(
        billing_database_url,
        "SELECT payment_voucher_url FROM billing.purchases WHERE id = %s",
        intent_id,
    )
    assert voucher is None
