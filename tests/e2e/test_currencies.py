"""Prices in the customer's currency through the REST edge: the seeded catalog sells every price
in usd and brl (`currency_options`); plans are shown in a currency asked for or in the caller's
customer's; subscriptions, Checkout and one-time payments are made in the chosen currency; a
customer pays in one currency only (Stripe's rule), which is a 409 `customer_currency_mismatch`.
Stripe's events reach billing through the real webhook pipeline."""

from typing import Any

import httpx
import pytest

from tests.e2e.gateway_client import CANCEL_URL, SUCCESS_URL, User, assert_error
from tests.e2e.webhook_pipeline import eventually
from tests.harness import BillingHandle
from tests.integration.stripe_emulator_helpers import unique

pytestmark = pytest.mark.usefixtures("webhook_pipeline")

SEEDED_BRL = {"basic_monthly": 9900, "basic_yearly": 99000, "pro_monthly": 19900}


async def plans(
    client: httpx.AsyncClient, *, currency: str | None = None, user: User | None = None
) -> dict[str, Any]:
    params = {} if currency is None else {"currency": currency}
    listed = await client.get(
        "/v1/plans", params=params, headers={} if user is None else user.headers
    )
    assert listed.status_code == 200, listed.text
    body: dict[str, Any] = listed.json()
    return body


def prices_by_key(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["lookup_key"]: p for plan in body["plans"] for p in plan["prices"]}


async def subscribe(
    client: httpx.AsyncClient, user: User, price: str, currency: str | None = None
) -> httpx.Response:
    body = {"price": price} if currency is None else {"price": price, "currency": currency}
    return await client.post("/v1/subscriptions", json=body, headers=user.headers)


async def test_plans_are_shown_in_the_currency_asked_for(client: httpx.AsyncClient) -> None:
    in_brl = await plans(client, currency="BRL")
    by_default = await plans(client)

    assert in_brl["currency"] == "brl"
    brl = prices_by_key(in_brl)
    assert {key: brl[key]["unit_amount"] for key in SEEDED_BRL} == SEEDED_BRL
    assert {p["currency"] for p in brl.values()} == {"brl"}
    assert brl["basic_monthly"]["currencies"] == ["brl", "usd"]
    assert by_default["currency"] is None
    usd = prices_by_key(by_default)["basic_monthly"]
    assert (usd["unit_amount"], usd["currency"], usd["currencies"]) == (1900, "usd", ["usd", "brl"])


async def test_a_currency_that_is_no_code_or_not_sold_is_refused(
    client: httpx.AsyncClient, new_user
) -> None:
    assert_error(await client.get("/v1/plans?currency=br1"), 400, "invalid_currency")
    assert_error(await client.get("/v1/plans?currency=reais"), 400, "invalid_currency")
    assert_error(await client.get("/v1/plans?currency=xyz"), 400, "currency_not_offered")
    user = await new_user()
    assert_error(await subscribe(client, user, "basic_monthly", "b r"), 400, "invalid_currency")
    assert_error(await subscribe(client, user, "basic_monthly", "jpy"), 400, "currency_not_offered")
    assert (await plans(client, user=user))["currency"] is None  # nothing was made


async def test_a_subscription_in_brl_makes_brl_the_customer_s_currency_and_no_one_else_s(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user, other = await new_user(), await new_user()

    started = await subscribe(client, user, "basic_monthly", "brl")

    assert started.status_code == 201, started.text
    subscription = await billing.stripe.v1.subscriptions.retrieve_async(
        started.json()["subscription"]["id"]
    )
    assert subscription.currency == "brl"
    # The caller's plans are in its customer's currency; another user's, and anyone's, are not.
    mine = await plans(client, user=user)
    assert mine["currency"] == "brl"
    assert prices_by_key(mine)["pro_monthly"]["unit_amount"] == 19900
    screen = await client.get("/v1/billing", headers=user.headers)
    [price] = screen.json()["plan"]["prices"]
    assert (price["unit_amount"], price["currency"]) == (9900, "brl")
    assert (await plans(client, user=other))["currency"] is None
    assert (await plans(client))["currency"] is None
    customer = await client.get("/v1/customer", headers=other.headers)
    assert customer.json()["currency"] is None


async def test_payments_and_starts_in_another_currency_than_the_customer_s_are_409(
    client: httpx.AsyncClient, new_user
) -> None:
    user = await new_user()
    assert (await subscribe(client, user, "basic_monthly", "brl")).status_code == 201

    # Without a currency: the customer's.
    payment = await client.post("/v1/payments", json={"price": "gi_patch"}, headers=user.headers)
    assert payment.status_code == 201, payment.text
    assert (payment.json()["amount"], payment.json()["currency"]) == (7900, "brl")
    for path, body in (
        ("/v1/payments", {"price": "gi_patch", "currency": "usd"}),
        ("/v1/subscriptions", {"price": "pro_monthly", "currency": "usd"}),
        (
            "/v1/checkout/sessions",
            {
                "price": "pro_monthly",
                "currency": "usd",
                "success_url": SUCCESS_URL,
                "cancel_url": CANCEL_URL,
            },
        ),
    ):
        refused = await client.post(path, json=body, headers=user.headers)
        assert_error(refused, 409, "customer_currency_mismatch")


async def test_stripe_s_own_refusal_of_a_second_currency_is_the_same_409(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    """The mirror does not know the customer's currency yet (set at Stripe by a subscription
    billing did not make): Stripe refuses, and the caller reads the same reason."""
    user = await new_user()
    [price] = (
        await billing.stripe.v1.prices.list_async(params={"lookup_keys": ["basic_monthly"]})
    ).data
    made_elsewhere = await billing.stripe.v1.subscriptions.create_async(
        params={
            "customer": user.customer_id,
            "items": [{"price": price.id}],
            "payment_behavior": "default_incomplete",
        }
    )
    await billing.stripe.v1.subscriptions.cancel_async(made_elsewhere.id)

    refused = await subscribe(client, user, "basic_monthly", "brl")

    assert_error(refused, 409, "customer_currency_mismatch")
    assert "combine currencies" in refused.json()["error"]["message"]  # Stripe's words


async def test_a_checkout_session_in_brl_is_in_brl(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user = await new_user()

    created = await client.post(
        "/v1/checkout/sessions",
        json={
            "price": "pro_monthly",
            "currency": "brl",
            "success_url": SUCCESS_URL,
            "cancel_url": CANCEL_URL,
        },
        headers=user.headers,
    )

    assert created.status_code == 201, created.text
    session = await billing.stripe.v1.checkout.sessions.retrieve_async(created.json()["id"])
    # (Its amounts are the trial's at Stripe, whose first subscription has one.)
    assert session.currency == "brl"


async def test_a_currency_option_added_at_stripe_reaches_the_plans_through_price_events(
    client: httpx.AsyncClient, billing: BillingHandle
) -> None:
    """Stripe leaves `currency_options` out of a price's events: billing fetches the price.
    (In a currency no other test of the session's Stripe sells in.)"""
    product = await billing.stripe.v1.products.create_async(params={"name": unique("Open mat")})
    price = await billing.stripe.v1.prices.create_async(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 1200,
            "recurring": {"interval": "month"},
        }
    )
    assert_error(await client.get("/v1/plans?currency=nok"), 400, "currency_not_offered")

    await billing.stripe.v1.prices.update_async(
        price.id, params={"currency_options": {"nok": {"unit_amount": 1100}}}
    )

    async def shown_in_nok() -> bool:
        listed = await client.get("/v1/plans?currency=nok")
        return listed.status_code == 200 and any(
            p["id"] == price.id and p["unit_amount"] == 1100
            for plan in listed.json()["plans"]
            for p in plan["prices"]
        )

    await eventually(shown_in_nok)
    assert any(
        p["id"] == price.id and p["currencies"] == ["usd", "nok"]
        for plan in (await plans(client))["plans"]
        for p in plan["prices"]
    )
