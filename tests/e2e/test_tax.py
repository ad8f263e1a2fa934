"""Stripe Tax through the REST edge (issue 15 §3), with BILLING_AUTOMATIC_TAX on (a billing
server and gateway of its own, on the same database and Stripe) and off (the suite's own):
the billing address the app sends, subscriptions from PaymentSheet and Checkout, plan-change
previews and one-time payments, taxed by the customer's country, and the invoices the mirror
keeps from Stripe's events. Off, nothing is sent to Stripe about tax and nothing is taxed.
The emulator taxes at a fixed rate by country (DE 19 %, IE 23 %, …); Stripe Tax's own rates
would differ, so these tests run against the emulator."""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from services.billing.grpc_api import start_billing_server
from services.billing.settings import BillingRules
from services.common.db import create_engine
from tests.e2e.gateway_client import GatewayHandle, TokenIssuer, User, assert_error
from tests.e2e.webhook_pipeline import eventually
from tests.harness import APP_ORIGIN, BillingHandle, OneTimeProduct, serve_on_loopback

pytestmark = pytest.mark.usefixtures("webhook_pipeline")

BERLIN = {"country": "DE", "postal_code": "10115", "city": "Berlin"}
BASIC = 1900  # basic_monthly, in cents (the demo catalog)
PRO = 3900


@pytest.fixture(autouse=True)
def _emulator_only(billing: BillingHandle) -> None:
    if not billing.stripe_target.is_emulator:
        pytest.skip(
            "the emulator's tax rates are fixed; Stripe's test mode needs Stripe Tax set up"
        )


@asynccontextmanager
async def served(
    billing: BillingHandle, billing_database_url: str, gateway: GatewayHandle, *, tax: bool
) -> AsyncIterator[str]:
    """A gateway (its URL) in front of a billing server with BILLING_AUTOMATIC_TAX `tax`, and
    no trial (so that the first invoice is paid at once)."""
    engine = create_engine(billing_database_url, pool_size=2)
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=engine,
        stripe_client=billing.stripe,
        service_secrets=billing.service_secrets,
        rules=BillingRules(
            allowed_redirect_origins=frozenset({APP_ORIGIN}),
            trial_days=0,
            test_clock_prefix=billing.stripe_target.test_clock_prefix,
            automatic_tax=tax,
        ),
    )
    settings = gateway.settings.model_copy(
        update={"billing_target": f"127.0.0.1:{server.port}", "gateway_customer_cache_seconds": 0}
    )
    http_server, task, port = await serve_on_loopback(create_app(settings))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        http_server.should_exit = True
        await task
        await server.stop(0)
        await engine.dispose()


@pytest.fixture(scope="module")
async def taxed_url(
    billing: BillingHandle, billing_database_url: str, gateway: GatewayHandle
) -> AsyncIterator[str]:
    async with served(billing, billing_database_url, gateway, tax=True) as url:
        yield url


@pytest.fixture(scope="module")
async def untaxed_url(
    billing: BillingHandle, billing_database_url: str, gateway: GatewayHandle
) -> AsyncIterator[str]:
    async with served(billing, billing_database_url, gateway, tax=False) as url:
        yield url


@pytest.fixture
async def taxed(taxed_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=taxed_url, timeout=30) as client:
        yield client


@pytest.fixture
async def untaxed(untaxed_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=untaxed_url, timeout=30) as client:
        yield client


async def customer(client: httpx.AsyncClient, issuer: TokenIssuer) -> User:
    user_id = "user_" + secrets.token_hex(6)
    headers = issuer.headers(user_id)
    made = await client.post(
        "/v1/customer", json={"email": f"{user_id}@example.com", "name": "Ana"}, headers=headers
    )
    assert made.status_code == 201, made.text
    return User(user_id, headers, made.json()["stripe_customer_id"])


async def located(client: httpx.AsyncClient, user: User, address: dict[str, str]) -> dict:
    saved = await client.put("/v1/customer/tax-location", json=address, headers=user.headers)
    assert saved.status_code == 200, saved.text
    return saved.json()


async def paid_subscription(
    client: httpx.AsyncClient, billing: BillingHandle, user: User, price: str = "basic_monthly"
) -> str:
    """Subscribe as the app does (POST /v1/subscriptions, PaymentSheet confirms with a card)."""
    created = await client.post("/v1/subscriptions", json={"price": price}, headers=user.headers)
    assert created.status_code == 201, created.text
    intent_id = created.json()["client_secret"].split("_secret_")[0]
    await billing.stripe.v1.payment_intents.confirm_async(
        intent_id, params={"payment_method": "pm_card_visa"}
    )
    return created.json()["subscription"]["id"]


async def paid_invoice(client: httpx.AsyncClient, user: User) -> dict[str, Any]:
    """The user's one invoice, once Stripe's events have it paid in the mirror."""
    found: list[dict[str, Any]] = []

    async def paid() -> bool:
        listed = await client.get("/v1/invoices", headers=user.headers)
        assert listed.status_code == 200, listed.text
        found[:] = [i for i in listed.json()["invoices"] if i["status"] == "paid"]
        return bool(found)

    await eventually(paid)
    return found[0]


async def test_a_subscription_waits_for_an_address_stripe_tax_can_use(
    taxed: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    user = await customer(taxed, issuer)

    refused = await taxed.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=user.headers
    )
    assert_error(refused, 400, "customer_tax_location_invalid")
    no_zip = await taxed.put(
        "/v1/customer/tax-location", json={"country": "US", "city": "Austin"}, headers=user.headers
    )
    assert_error(no_zip, 400, "customer_tax_location_invalid")
    shown = await taxed.get("/v1/customer/tax-location", headers=user.headers)
    assert shown.json()["country"] is None  # the refused address was not saved

    saved = await located(taxed, user, {"country": "us", "postal_code": "78701"})

    assert (saved["country"], saved["postal_code"], saved["automatic_tax"]) == (
        "US",
        "78701",
        "supported",
    )
    assert (await taxed.get("/v1/customer/tax-location", headers=user.headers)).json() == saved


async def test_a_paymentsheet_subscription_is_billed_with_tax_and_the_invoice_shows_it(
    taxed: httpx.AsyncClient, issuer: TokenIssuer, billing: BillingHandle
) -> None:
    user = await customer(taxed, issuer)
    await located(taxed, user, BERLIN)

    subscription_id = await paid_subscription(taxed, billing, user)

    invoice = await paid_invoice(taxed, user)
    assert (invoice["total_excluding_tax"], invoice["total_tax"], invoice["total"]) == (
        BASIC,
        361,  # 19 % of 19.00
        BASIC + 361,
    )
    assert (invoice["amount_paid"], invoice["automatic_tax_status"]) == (BASIC + 361, "complete")
    in_stripe = await billing.stripe.v1.subscriptions.retrieve_async(subscription_id)
    assert in_stripe.automatic_tax.enabled is True

    preview = await taxed.post(
        f"/v1/subscriptions/{subscription_id}/preview",
        json={"price": "pro_monthly", "proration_behavior": "always_invoice"},
        headers=user.headers,
    )
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    prorated = sum(line["amount"] for line in shown["lines"])
    assert 0 < prorated <= PRO - BASIC
    assert shown["tax"] == (prorated * 19 + 50) // 100
    assert shown["amount_due"] == prorated + shown["tax"]


async def test_a_one_time_payment_is_charged_its_tax_through_a_tax_calculation(
    taxed: httpx.AsyncClient,
    issuer: TokenIssuer,
    billing: BillingHandle,
    one_time_product: OneTimeProduct,
) -> None:
    user = await customer(taxed, issuer)
    unlocated = await taxed.post(
        "/v1/payments", json={"price": one_time_product.price}, headers=user.headers
    )
    assert_error(unlocated, 400, "customer_tax_location_invalid")
    await located(taxed, user, {"country": "FR", "postal_code": "75001"})

    created = await taxed.post(
        "/v1/payments", json={"price": one_time_product.price}, headers=user.headers
    )

    assert created.status_code == 201, created.text
    payment = created.json()
    assert (payment["amount"], payment["tax"]) == (3000, 500)  # 25.00 and 20 %
    intent = await billing.stripe.v1.payment_intents.retrieve_async(payment["id"])
    assert intent.amount == 3000
    assert intent.hooks is not None
    assert intent.hooks.inputs is not None
    assert intent.hooks.inputs.tax is not None
    calculation = await billing.stripe.v1.tax.calculations.retrieve_async(
        intent.hooks.inputs.tax.calculation
    )
    assert (calculation.customer, calculation.tax_amount_exclusive) == (user.customer_id, 500)


async def test_checkout_collects_the_address_and_tax_ids_and_taxes_the_subscription(
    taxed: httpx.AsyncClient, issuer: TokenIssuer, billing: BillingHandle
) -> None:
    user = await customer(taxed, issuer)
    made = await taxed.post(
        "/v1/checkout/sessions",
        json={
            "price": "basic_monthly",
            "success_url": f"{APP_ORIGIN}/done",
            "cancel_url": f"{APP_ORIGIN}/plans",
        },
        headers=user.headers,
    )
    assert made.status_code == 201, made.text
    session_id = made.json()["id"]
    session = await billing.stripe.v1.checkout.sessions.retrieve_async(session_id)
    assert session.automatic_tax.enabled is True
    assert session.billing_address_collection == "required"
    assert session.tax_id_collection is not None
    assert session.tax_id_collection.enabled

    await billing.stripe_target.complete_checkout(
        session_id, "pm_card_visa", billing_address={"country": "IE", "city": "Dublin"}
    )
    confirmed = await taxed.post(
        f"/v1/checkout/sessions/{session_id}/confirm", headers=user.headers
    )

    assert confirmed.status_code == 200, confirmed.text
    invoice = await paid_invoice(taxed, user)
    assert (invoice["total_tax"], invoice["total"]) == (437, BASIC + 437)  # 23 %
    address = (await taxed.get("/v1/customer/tax-location", headers=user.headers)).json()
    assert (address["country"], address["city"], address["automatic_tax"]) == (
        "IE",
        "Dublin",
        "supported",
    )


async def test_with_the_setting_off_nothing_is_taxed_nor_sent_about_tax(
    untaxed: httpx.AsyncClient,
    issuer: TokenIssuer,
    billing: BillingHandle,
    one_time_product: OneTimeProduct,
) -> None:
    client = untaxed
    user = await customer(client, issuer)
    other = await customer(client, issuer)
    saved = await located(client, user, BERLIN)  # kept, not validated: Stripe Tax is off
    assert (saved["country"], saved["automatic_tax"]) == ("DE", None)
    assert (await client.get("/v1/customer/tax-location", headers=other.headers)).json()[
        "country"
    ] is None  # another user's address is not this one's

    subscription_id = await paid_subscription(client, billing, other)
    payment = await client.post(
        "/v1/payments", json={"price": one_time_product.price}, headers=user.headers
    )
    checkout = await client.post(
        "/v1/checkout/sessions",
        json={
            "price": "basic_monthly",
            "success_url": f"{APP_ORIGIN}/done",
            "cancel_url": f"{APP_ORIGIN}/plans",
        },
        headers=user.headers,
    )

    invoice = await paid_invoice(client, other)
    assert (invoice["total_tax"], invoice["total"], invoice["automatic_tax_status"]) == (
        0,
        invoice["total_excluding_tax"],
        None,
    )
    in_stripe = await billing.stripe.v1.subscriptions.retrieve_async(subscription_id)
    assert in_stripe.automatic_tax.enabled is False
    assert payment.status_code == 201, payment.text
    assert (payment.json()["amount"], payment.json()["tax"]) == (2500, 0)
    intent = await billing.stripe.v1.payment_intents.retrieve_async(payment.json()["id"])
    assert intent.hooks is None
    assert checkout.status_code == 201, checkout.text
    session = await billing.stripe.v1.checkout.sessions.retrieve_async(checkout.json()["id"])
    assert session.automatic_tax.enabled is False
    assert session.billing_address_collection is None
