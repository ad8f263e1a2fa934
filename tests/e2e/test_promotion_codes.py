"""Promotion codes in the app, through the REST edge: previewed, applied by Stripe on a
PaymentSheet subscription, refused with a stable reason when Stripe would refuse them, shown on
subscriptions and invoices, and kept by a downgrade scheduled at the period end. And prices the
app cannot subscribe to (not a fixed amount): refused with 400, never a 500."""

import asyncio
import secrets
import time
from typing import Any

import httpx
import pytest

from tests.e2e.gateway_client import User, assert_error
from tests.e2e.webhook_pipeline import eventually
from tests.harness import BillingHandle, OddPrices


async def promotion_code(billing: BillingHandle, coupon: Any, **params: Any) -> str:
    """A new coupon and a code for it; the code as a customer would type it."""
    made = await billing.stripe.v1.coupons.create_async(params=coupon)
    code = "TATAME-" + secrets.token_hex(4).upper()
    created: Any = {"promotion": {"type": "coupon", "coupon": made.id}, "code": code, **params}
    await billing.stripe.v1.promotion_codes.create_async(params=created)
    return code


async def product_of(billing: BillingHandle, lookup_key: str) -> str:
    listed = await billing.stripe.v1.prices.list_async(params={"lookup_keys": [lookup_key]})
    return str(listed.data[0].product)


async def subscribe(
    client: httpx.AsyncClient, user: User, price: str, code: str | None = None
) -> httpx.Response:
    body = {"price": price} if code is None else {"price": price, "promotion_code": code}
    return await client.post("/v1/subscriptions", json=body, headers=user.headers)


@pytest.mark.usefixtures("webhook_pipeline")
async def test_a_code_applies_its_discount_on_mobile_and_survives_a_scheduled_downgrade(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    code = await promotion_code(billing, {"percent_off": 25, "duration": "forever", "name": "Q"})
    user = await new_user()

    preview = await client.post(
        "/v1/promotion-codes/preview",
        json={"price": "pro_monthly", "promotion_code": code.lower()},
        headers=user.headers,
    )
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert (shown["subtotal"], shown["total"], shown["currency"]) == (3900, 2925, "usd")
    assert shown["discount"]["percent_off"] == 25
    assert (shown["discount"]["promotion_code"], shown["discount"]["amount"]) == (code, 975)

    created = await subscribe(client, user, "pro_monthly", code.lower())
    assert created.status_code == 201, created.text
    subscription = created.json()["subscription"]
    [discount] = subscription["discounts"]
    assert (discount["promotion_code"], discount["percent_off"], discount["duration"]) == (
        code,
        25,
        "forever",
    )
    # What PaymentSheet does during the trial: save the card for its end.
    intent_id = created.json()["client_secret"].split("_secret_")[0]
    await billing.stripe.v1.setup_intents.confirm_async(
        intent_id, params={"payment_method": "pm_card_visa"}
    )
    await billing.stripe_target.end_period(billing.stripe, subscription["id"])

    async def first_paid_invoices() -> list[dict]:
        listed = (await client.get("/v1/invoices", headers=user.headers)).json()["invoices"]
        return [i for i in listed if i["status"] == "paid" and i["total"] == 2925]

    await eventually(first_paid_invoices)
    # The next period's draft may be listed beside it, depending on when the events arrive.
    [invoice] = await first_paid_invoices()
    assert invoice["total_discount_amount"] == 975
    assert [(d["promotion_code"], d["amount"]) for d in invoice["discounts"]] == [(code, 975)]

    downgrade = await client.patch(
        f"/v1/subscriptions/{subscription['id']}",
        json={"price": "basic_monthly", "proration_behavior": "none"},
        headers=user.headers,
    )
    assert downgrade.status_code == 200, downgrade.text
    assert downgrade.json()["takes_effect"] == "period_end"
    assert [d["promotion_code"] for d in downgrade.json()["subscription"]["discounts"]] == [code]
    await billing.stripe_target.end_period(billing.stripe, subscription["id"])

    basic = await billing.stripe.v1.prices.list_async(params={"lookup_keys": ["basic_monthly"]})
    path = f"/v1/subscriptions/{subscription['id']}"

    async def downgraded_and_discounted() -> bool:
        listed = (await client.get("/v1/invoices", headers=user.headers)).json()["invoices"]
        current = (await client.get(path, headers=user.headers)).json()
        # basic_monthly is 1900, less 25 %.
        return current["price_id"] == basic.data[0].id and any(i["total"] == 1425 for i in listed)

    await eventually(downgraded_and_discounted)
    after = (await client.get(path, headers=user.headers)).json()
    assert [d["promotion_code"] for d in after["discounts"]] == [code]


async def _paid_before(user: User, billing: BillingHandle) -> None:
    """A customer who has paid an invoice: a paid subscription, then canceled."""
    card = await billing.stripe.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": user.customer_id}
    )
    prices = await billing.stripe.v1.prices.list_async(params={"lookup_keys": ["basic_monthly"]})
    paid = await billing.stripe.v1.subscriptions.create_async(
        params={
            "customer": user.customer_id,
            "items": [{"price": prices.data[0].id}],
            "default_payment_method": card.id,
        }
    )
    assert paid.status == "active"
    await billing.stripe.v1.subscriptions.cancel_async(paid.id)


@pytest.mark.parametrize(
    ("coupon", "code_params", "reason"),
    [
        ({"percent_off": 10}, {"active": False}, "promotion_code_inactive"),
        ({"percent_off": 10}, {"expires_at": "soon"}, "promotion_code_expired"),
        ({"percent_off": 10, "applies_to": "another product"}, {}, "promotion_code_not_applicable"),
        (
            {"percent_off": 10},
            {"restrictions": {"first_time_transaction": True}},
            "promotion_code_first_time_only",
        ),
        (
            {"percent_off": 10},
            {"max_redemptions": 1, "redeemed": True},
            "promotion_code_fully_redeemed",
        ),
        (
            {"percent_off": 10},
            {"restrictions": {"minimum_amount": 5000, "minimum_amount_currency": "usd"}},
            "promotion_code_minimum_amount",
        ),
    ],
)
async def test_a_code_stripe_would_refuse_is_refused_with_its_reason_and_creates_nothing(
    client: httpx.AsyncClient,
    new_user,
    billing: BillingHandle,
    coupon: dict[str, Any],
    code_params: dict[str, Any],
    reason: str,
) -> None:
    user = await new_user()
    if coupon.get("applies_to"):
        coupon = {**coupon, "applies_to": {"products": [await product_of(billing, "pro_yearly")]}}
    if code_params.get("expires_at"):
        code_params = {**code_params, "expires_at": int(time.time()) + 1}
    redeemed = code_params.pop("redeemed", False)
    if code_params.get("restrictions", {}).get("first_time_transaction"):
        await _paid_before(user, billing)
    code = await promotion_code(billing, coupon, **code_params)
    if redeemed:
        assert (await subscribe(client, await new_user(), "basic_monthly", code)).status_code == 201
    if "expires_at" in code_params:
        # Stripe takes only an `expires_at` in the future: wait until it is past.
        await asyncio.sleep(max(0.0, code_params["expires_at"] - time.time()) + 0.1)
    before = await billing.stripe.v1.subscriptions.list_async(
        params={"customer": user.customer_id, "status": "all"}
    )

    preview = await client.post(
        "/v1/promotion-codes/preview",
        json={"price": "basic_monthly", "promotion_code": code},
        headers=user.headers,
    )
    assert_error(preview, 400, reason)
    assert_error(await subscribe(client, user, "basic_monthly", code), 400, reason)
    after = await billing.stripe.v1.subscriptions.list_async(
        params={"customer": user.customer_id, "status": "all"}
    )
    assert len(after.data) == len(before.data)


async def test_an_unknown_code_is_400_promotion_code_invalid(
    client: httpx.AsyncClient, new_user
) -> None:
    user = await new_user()
    assert_error(
        await subscribe(client, user, "basic_monthly", "NO-SUCH-CODE"),
        400,
        "promotion_code_invalid",
    )
    malformed = await subscribe(client, user, "basic_monthly", "not a code!")
    assert malformed.status_code == 400


async def test_subscribing_to_a_price_that_is_not_a_fixed_amount_is_400(
    client: httpx.AsyncClient, new_user, odd_prices: OddPrices
) -> None:
    user = await new_user()
    for price in (odd_prices.tiered, odd_prices.metered):
        assert_error(await subscribe(client, user, price), 400, "price_not_subscribable")
        preview = await client.post(
            "/v1/promotion-codes/preview",
            json={"price": price, "promotion_code": "ANY-CODE"},
            headers=user.headers,
        )
        assert_error(preview, 400, "price_not_subscribable")
