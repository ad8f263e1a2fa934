"""Which payment methods billing lets Stripe offer: by default the dashboard's (dynamic payment
methods: billing names no type, and Stripe offers what the account enables for the currency,
boleto in `brl`); with BILLING_PAYMENT_METHOD_TYPES, only those, on every PaymentIntent,
SetupIntent, PaymentSheet subscription and Checkout Session it makes."""

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from services.billing.catalog import sync_catalog
from tests.harness import BillingHandle
from tests.integration.billing_accounts import Account, billing_server, checkout


@dataclass(frozen=True)
class BrlPrices:
    monthly: str
    once: str


@pytest.fixture(scope="module")
async def brl(billing: BillingHandle) -> AsyncIterator[BrlPrices]:
    stripe = billing.stripe
    product = await stripe.v1.products.create_async(
        params={"name": "Plano " + secrets.token_hex(4)}
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
    yield BrlPrices(monthly.id, once.id)
    await stripe.v1.products.update_async(product.id, params={"active": False})
    await sync_catalog(engine=billing.engine, stripe_client=stripe)


@pytest.mark.parametrize(
    ("configured", "offered", "allowed"),
    [((), ["boleto", "card"], None), (("card",), ["card"], ["card"])],
)
async def test_stripe_offers_the_dashboards_methods_unless_the_operator_narrows_them(
    billing: BillingHandle,
    brl: BrlPrices,
    configured: tuple[str, ...],
    offered: list[str],
    allowed: list[str] | None,
) -> None:
    stripe = billing.stripe.v1
    async with billing_server(billing, trial_days=0, payment_method_types=configured) as stub:
        account = Account(billing, stub)
        await account.customer_id()
        payment = await account.call("CreatePayment", price=brl.once)
        setup = await account.call("CreateSetupIntent")
        subscribed = await account.call(
            "CreateSubscription", price=brl.monthly, email=account.email, name="Ana"
        )
        session_id = await checkout(Account(billing, stub), brl.monthly)

    intent = await stripe.payment_intents.retrieve_async(payment.payment_intent_id)
    assert (sorted(intent.payment_method_types), intent.allowed_payment_method_types) == (
        offered,
        allowed,
    )
    assert intent.automatic_payment_methods is not None
    assert intent.automatic_payment_methods.enabled
    setup_intent = await stripe.setup_intents.retrieve_async(setup.setup_intent_id)
    assert setup_intent.allowed_payment_method_types == allowed
    subscription = await stripe.subscriptions.retrieve_async(subscribed.subscription.id)
    assert subscription.payment_settings is not None
    assert subscription.payment_settings.payment_method_types == allowed
    first_payment = subscribed.client_secret.partition("_secret_")[0]
    invoice_intent = await stripe.payment_intents.retrieve_async(first_payment)
    assert sorted(invoice_intent.payment_method_types) == offered
    session = await stripe.checkout.sessions.retrieve_async(session_id)
    assert (sorted(session.payment_method_types), session.allowed_payment_method_types) == (
        offered,
        allowed,
    )
