"""Selling and managing subscriptions through the REST edge: every route against the real
billing service, the Stripe emulator over HTTP, and the webhook path (receiver → relay → billing)."""

import secrets

import httpx
import pytest

from tests.e2e.gateway_client import CANCEL_URL, SUCCESS_URL, TokenIssuer, User, assert_error
from tests.e2e.webhook_pipeline import eventually
from tests.harness import BillingHandle

MOBILE_STRIPE_VERSION = "2020-08-27"


def payment_intent_id(client_secret: str) -> str:
    return client_secret.split("_secret_")[0]


async def subscription_status(client: httpx.AsyncClient, user: User, subscription_id: str) -> str:
    response = await client.get(f"/v1/subscriptions/{subscription_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["status"]


async def features(client: httpx.AsyncClient, user: User) -> set[str]:
    response = await client.get("/v1/entitlements", headers=user.headers)
    assert response.status_code == 200, response.text
    return {e["feature"] for e in response.json()["entitlements"]}


@pytest.mark.usefixtures("webhook_pipeline")
async def test_mobile_flow_trial_first_then_a_paid_subscription_active_through_the_webhook_path(
    client, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    first = await client.post(
        "/v1/subscriptions",
        json={"price": "basic_monthly", "stripe_version": MOBILE_STRIPE_VERSION},
        headers=user.headers,
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["trial_applied"] is True
    assert body["intent_type"] == "setup_intent"
    assert body["customer_id"] == user.customer_id
    assert body["ephemeral_key_secret"]
    assert body["subscription"]["status"] == "trialing"
    # PaymentSheet saves the card the trial needs; until then another start would replace it.
    await billing.stripe.v1.setup_intents.confirm_async(
        payment_intent_id(body["client_secret"]), params={"payment_method": "pm_card_mastercard"}
    )

    second = await client.post(
        "/v1/subscriptions", json={"price": "pro_monthly"}, headers=user.headers
    )
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "live_subscription_exists"
    listed = await billing.stripe.v1.subscriptions.list_async(
        params={"customer": user.customer_id, "status": "all"}
    )
    assert len(listed.data) == 1  # the refused one never reached Stripe

    cancelled = await client.post(
        f"/v1/subscriptions/{body['subscription']['id']}/cancel",
        json={"immediately": True},
        headers=user.headers,
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "canceled"

    paid = await client.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=user.headers
    )
    assert paid.status_code == 201, paid.text
    paid_body = paid.json()
    assert paid_body["trial_applied"] is False
    assert paid_body["intent_type"] == "payment_intent"
    assert paid_body["subscription"]["status"] == "incomplete"
    # What PaymentSheet does on the phone: confirm the payment with the card the user entered.
    await billing.stripe.v1.payment_intents.confirm_async(
        payment_intent_id(paid_body["client_secret"]), params={"payment_method": "pm_card_visa"}
    )
    subscription_id = paid_body["subscription"]["id"]

    async def active() -> bool:
        return await subscription_status(client, user, subscription_id) == "active"

    await eventually(active)
    assert "class_booking" in await features(client, user)

    async def invoice_paid() -> bool:  # invoice.paid comes through the webhook path too
        invoices = (await client.get("/v1/invoices", headers=user.headers)).json()["invoices"]
        return any(i["status"] == "paid" and i["hosted_invoice_url"] for i in invoices)

    await eventually(invoice_paid)
    methods = (await client.get("/v1/payment-methods", headers=user.headers)).json()[
        "payment_methods"
    ]
    # Both cards PaymentSheet saved: the trial's, and the paid subscription's.
    assert sorted(m["card_last4"] for m in methods) == ["4242", "4444"]
    visa = next(m for m in methods if m["card_last4"] == "4242")
    made_default = await client.post(
        f"/v1/payment-methods/{visa['id']}/default", headers=user.headers
    )
    assert made_default.status_code == 200
    assert made_default.json()["is_default"] is True


@pytest.mark.parametrize("webhook_first", [False, True])
@pytest.mark.usefixtures("webhook_pipeline")
async def test_checkout_completion_through_confirm_and_webhook_in_either_order_gives_one_subscription(
    client,
    new_user,
    billing: BillingHandle,
    webhook_first: bool,
) -> None:
    user = await new_user()
    created = await client.post(
        "/v1/checkout/sessions",
        json={"price": "pro_yearly", "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL},
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["url"].startswith("https://")
    await billing.stripe_target.complete_checkout(session["id"], "pm_card_visa")

    async def mirrored() -> bool:
        listed = (await client.get("/v1/subscriptions", headers=user.headers)).json()
        return len(listed["subscriptions"]) == 1

    if webhook_first:
        await eventually(mirrored)
    confirmed = await client.post(
        f"/v1/checkout/sessions/{session['id']}/confirm", headers=user.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "complete"
    subscription = confirmed.json()["subscription"]
    assert subscription["status"] in ("active", "trialing")
    await eventually(mirrored)
    listed = (await client.get("/v1/subscriptions", headers=user.headers)).json()["subscriptions"]
    assert [s["id"] for s in listed] == [subscription["id"]]


async def test_subscribing_or_checking_out_before_creating_the_customer_is_customer_required(
    client, issuer: TokenIssuer
) -> None:
    headers = issuer.headers("user_" + secrets.token_hex(6))
    subscribed = await client.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=headers
    )
    assert_error(subscribed, 400, "customer_required")
    checkout = await client.post(
        "/v1/checkout/sessions",
        json={"price": "pro_yearly", "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL},
        headers=headers,
    )
    assert_error(checkout, 400, "customer_required")


async def test_redirect_urls_off_the_allowed_origins_are_refused(client, new_user) -> None:
    user = await new_user()
    response = await client.post(
        "/v1/checkout/sessions",
        json={
            "price": "pro_yearly",
            "success_url": "https://evil.example/x",
            "cancel_url": CANCEL_URL,
        },
        headers=user.headers,
    )
    assert response.status_code == 400
    portal = await client.post(
        "/v1/portal/sessions", json={"return_url": "https://evil.example/"}, headers=user.headers
    )
    assert portal.status_code == 400
    ok = await client.post(
        "/v1/portal/sessions", json={"return_url": SUCCESS_URL}, headers=user.headers
    )
    assert ok.status_code == 201
    assert ok.json()["url"].startswith("https://")


async def test_upgrade_downgrade_cancel_and_resume_show_in_entitlements(
    client, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    created = await client.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=user.headers
    )
    subscription_id = created.json()["subscription"]["id"]
    # PaymentSheet saves the card the trial needs (the mirror learns it with the next change).
    await billing.stripe.v1.setup_intents.confirm_async(
        payment_intent_id(created.json()["client_secret"]),
        params={"payment_method": "pm_card_visa"},
    )
    assert "video_library" not in await features(client, user)

    preview = await client.post(
        f"/v1/subscriptions/{subscription_id}/preview",
        json={"price": "pro_monthly"},
        headers=user.headers,
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["takes_effect"] == "now"

    missing_behaviour = await client.patch(
        f"/v1/subscriptions/{subscription_id}", json={"price": "pro_monthly"}, headers=user.headers
    )
    assert missing_behaviour.status_code == 400

    upgraded = await client.patch(
        f"/v1/subscriptions/{subscription_id}",
        json={"price": "pro_monthly", "proration_behavior": "create_prorations"},
        headers=user.headers,
    )
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["takes_effect"] == "now"
    assert "video_library" in await features(client, user)

    downgraded = await client.patch(
        f"/v1/subscriptions/{subscription_id}",
        json={"price": "basic_monthly", "proration_behavior": "none"},
        headers=user.headers,
    )
    assert downgraded.status_code == 200, downgraded.text
    assert downgraded.json()["takes_effect"] == "period_end"
    assert downgraded.json()["subscription"]["scheduled_price_id"]
    assert "video_library" in await features(client, user)  # paid for until the period ends

    cancel = await client.post(f"/v1/subscriptions/{subscription_id}/cancel", headers=user.headers)
    assert cancel.status_code == 200
    assert cancel.json()["cancel_at_period_end"] is True
    assert "class_booking" in await features(client, user)
    resumed = await client.post(f"/v1/subscriptions/{subscription_id}/resume", headers=user.headers)
    assert resumed.status_code == 200
    assert resumed.json()["cancel_at_period_end"] is False

    ended = await client.post(
        f"/v1/subscriptions/{subscription_id}/cancel",
        json={"immediately": True},
        headers=user.headers,
    )
    assert ended.status_code == 200
    assert ended.json()["status"] == "canceled"
    assert await features(client, user) == set()


async def test_one_time_payments_charge_the_catalog_amount(client, new_user) -> None:
    user = await new_user()
    paid = await client.post(
        "/v1/payments", json={"price": "gi_patch", "quantity": 2}, headers=user.headers
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["amount"] == 3000
    assert paid.json()["currency"] == "usd"
    recurring = await client.post(
        "/v1/payments", json={"price": "pro_monthly"}, headers=user.headers
    )
    assert recurring.status_code == 400


async def test_setup_intents_and_ephemeral_keys_for_payment_sheet(client, new_user) -> None:
    user = await new_user()
    setup = await client.post("/v1/setup-intents", headers=user.headers)
    assert setup.status_code == 201
    assert setup.json()["client_secret"]
    assert setup.json()["customer_id"] == user.customer_id
    key = await client.post(
        "/v1/ephemeral-keys", json={"stripe_version": MOBILE_STRIPE_VERSION}, headers=user.headers
    )
    assert key.status_code == 201
    assert key.json()["secret"]
    assert (await client.post("/v1/ephemeral-keys", headers=user.headers)).status_code == 400


async def test_the_existing_expo_app_calls_keep_working(client, issuer: TokenIssuer) -> None:
    user_id = "user_" + secrets.token_hex(6)
    headers = issuer.headers(user_id)
    # Other tests add products to the shared catalog: ask for all of them.
    products = (await client.get("/api/stripe/products", params={"limit": 100})).json()
    assert products["count"] == len(products["data"]) >= 2
    assert all(
        {"id", "name", "description", "metadata", "default_price"} <= set(p)
        for p in products["data"]
    )
    basic = next(p for p in products["data"] if p["name"] == "Tatame Basic")
    assert basic["default_price"]["unit_amount"] == 1900

    customer = await client.post(
        "/api/stripe/customers",
        json={"name": "Ana", "email": f"{user_id}@example.com", "userId": 42},
        headers=headers,
    )
    assert customer.status_code == 201
    assert customer.json()["created"] is True
    customer_id = customer.json()["data"]["id"]
    created = await client.post(
        "/api/stripe/subscriptions",
        json={"customerId": customer_id, "priceId": basic["default_price"]["id"], "userId": 42},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    subscription_id = created.json()["data"]["id"]
    fetched = (
        await client.get(f"/api/stripe/subscriptions/{subscription_id}", headers=headers)
    ).json()["data"]
    assert fetched["plan"]["amount"] == 1900
    assert fetched["plan"]["interval"] == "month"
    current = (
        await client.get(f"/api/stripe/subscriptions/customer/{customer_id}", headers=headers)
    ).json()
    assert current["data"]["id"] == subscription_id
    for path in ("setup-intents", "ephemeral-keys"):
        response = await client.post(
            f"/api/stripe/{path}", json={"customerId": customer_id}, headers=headers
        )
        assert response.status_code == 201, response.text
    assert (
        await client.post(
            "/api/stripe/ephemeral-keys", json={"customerId": customer_id}, headers=headers
        )
    ).json()["data"]["secret"]
    catalog_amount = await client.post(
        "/api/stripe/payment-intents",
        json={"customerId": customer_id, "amount": 1500, "currency": "usd"},
        headers=headers,
    )
    assert catalog_amount.status_code == 201
    assert catalog_amount.json()["data"]["client_secret"]
    chosen_amount = await client.post(
        "/api/stripe/payment-intents",
        json={"customerId": customer_id, "amount": 1, "currency": "usd"},
        headers=headers,
    )
    assert chosen_amount.status_code == 400
    deleted = await client.delete(f"/api/stripe/subscriptions/{subscription_id}", headers=headers)
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is True
    assert deleted.json()["data"]["cancel_at_period_end"] is True  # not immediate


@pytest.mark.usefixtures("stripe_emulator")
async def test_a_second_user_reaches_none_of_the_first_users_objects(
    client, new_user, billing: BillingHandle
) -> None:
    owner, other = await new_user(), await new_user()
    subscription = (
        await client.post(
            "/v1/subscriptions", json={"price": "basic_monthly"}, headers=owner.headers
        )
    ).json()["subscription"]["id"]
    session = (
        await client.post(
            "/v1/checkout/sessions",
            json={"price": "pro_yearly", "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL},
            headers=other.headers,
        )
    ).json()["id"]
    card = await billing.stripe.v1.payment_methods.create_async(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    await billing.stripe.v1.payment_methods.attach_async(
        card.id, params={"customer": owner.customer_id}
    )
    # A promotion code for the owner's customer only: the other user cannot use it.
    coupon = await billing.stripe.v1.coupons.create_async(params={"percent_off": 50})
    owners_code = "OWNER-" + secrets.token_hex(4).upper()
    await billing.stripe.v1.promotion_codes.create_async(
        params={
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "code": owners_code,
            "customer": owner.customer_id,
        }
    )
    # The owner's first invoice (the trial's), and a card of the other user's to pay it with.
    owners_invoice = (
        await billing.stripe.v1.invoices.list_async(params={"customer": owner.customer_id})
    ).data[0]
    others_card = await billing.stripe.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": other.customer_id}
    )
    h = other.headers
    with_code = {"price": "pro_monthly", "promotion_code": owners_code}
    for route in ("/v1/promotion-codes/preview", "/v1/subscriptions"):
        assert_error(
            await client.post(route, json=with_code, headers=h),
            400,
            "promotion_code_not_applicable",
        )
    v1 = [
        ("GET", f"/v1/subscriptions/{subscription}", None),
        ("POST", f"/v1/subscriptions/{subscription}/preview", {"price": "pro_monthly"}),
        (
            "PATCH",
            f"/v1/subscriptions/{subscription}",
            {"price": "pro_monthly", "proration_behavior": "none"},
        ),
        ("POST", f"/v1/subscriptions/{subscription}/cancel", None),
        ("POST", f"/v1/subscriptions/{subscription}/resume", None),
        ("POST", f"/v1/subscriptions/{subscription}/pause", None),
        ("POST", f"/v1/subscriptions/{subscription}/pause", {"behavior": "void"}),
        ("POST", f"/v1/subscriptions/{subscription}/unpause", None),
        ("POST", f"/v1/payment-methods/{card.id}/default", None),
        ("DELETE", f"/v1/payment-methods/{card.id}", None),
        ("POST", f"/v1/invoices/{owners_invoice.id}/pay", None),
        ("POST", f"/v1/invoices/{owners_invoice.id}/pay", {"payment_method": others_card.id}),
        ("GET", f"/api/stripe/subscriptions/{subscription}", None),
        ("DELETE", f"/api/stripe/subscriptions/{subscription}", None),
    ]
    for method, path, body in v1:
        response = await client.request(method, path, json=body, headers=h)
        assert response.status_code in (403, 404), (
            method,
            path,
            response.status_code,
            response.text,
        )
    # The owner confirming the other user's checkout session, or paying with the other user's
    # card, is refused too.
    assert (
        await client.post(f"/v1/checkout/sessions/{session}/confirm", headers=owner.headers)
    ).status_code == 404
    assert_error(
        await client.post(
            f"/v1/invoices/{owners_invoice.id}/pay",
            json={"payment_method": others_card.id},
            headers=owner.headers,
        ),
        404,
        "not_found",
    )
    compat = [
        ("GET", f"/api/stripe/subscriptions/customer/{owner.customer_id}", None),
        (
            "POST",
            "/api/stripe/subscriptions",
            {
                "customerId": owner.customer_id,
                "priceId": "basic_monthly",
                "promotionCode": owners_code,
            },
        ),
        ("POST", "/api/stripe/setup-intents", {"customerId": owner.customer_id}),
        ("POST", "/api/stripe/ephemeral-keys", {"customerId": owner.customer_id}),
        (
            "POST",
            "/api/stripe/payment-intents",
            {"customerId": owner.customer_id, "amount": 1500, "currency": "usd"},
        ),
        ("POST", "/api/stripe/customers", {"email": "x@example.com", "userId": owner.id}),
    ]
    for method, path, body in compat:
        response = await client.request(method, path, json=body, headers=h)
        assert response.status_code == 403, (method, path, response.status_code, response.text)
    # The billing screen is the caller's own: the owner's shows the subscription, the other's
    # shows nothing of the owner's.
    owners = (await client.get("/v1/billing", headers=owner.headers)).json()
    assert owners["subscription"]["id"] == subscription
    assert owners["subscription"]["pause_collection"] is None  # the other's pause never landed
    others = (await client.get("/v1/billing", headers=h)).json()
    assert others["subscription"] is None
    assert others["invoice_action"] is None
    assert others["default_payment_method"] is None
    assert others["entitlements"] == []
    # The export and the erasure are the caller's own: the other's export holds nothing of the
    # owner's, and erasing the other leaves the owner's customer, subscription and card alone.
    exported = await client.get("/v1/me/export", headers=h)
    assert exported.status_code == 200, exported.text
    for owners_id in (owner.id, owner.customer_id, subscription, card.id, owners_invoice.id):
        assert owners_id not in exported.text
    erased = await client.delete("/v1/me", headers=h)
    assert erased.status_code == 200, erased.text
    assert erased.json()["stripe_customer_id"] == other.customer_id
    assert (await client.get("/v1/customer", headers=owner.headers)).json()[
        "stripe_customer_id"
    ] == owner.customer_id
    # Nothing of the owner's changed.
    still = await client.get(f"/v1/subscriptions/{subscription}", headers=owner.headers)
    assert still.json()["cancel_at_period_end"] is False
    methods = (await client.get("/v1/payment-methods", headers=owner.headers)).json()[
        "payment_methods"
    ]
    assert card.id in {m["id"] for m in methods}
