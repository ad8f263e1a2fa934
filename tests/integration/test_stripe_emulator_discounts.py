"""The emulator's coupons, promotion codes and discounts, as Stripe has them at the pinned API
version: a code names its coupon under `promotion.coupon`, redeeming one is checked, and the
discount it makes lowers the invoices, previews and schedule phases of its subscription."""

import time
from typing import Any

import pytest
import stripe

from tests.integration.stripe_emulator_helpers import (
    customer_with_card,
    emulator_only,
    monthly,
    sdk_client,
    unique,
)


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def _code(client: stripe.StripeClient, coupon: Any, **params: Any) -> stripe.PromotionCode:
    made = client.v1.coupons.create(params=coupon)
    code: Any = {
        "promotion": {"type": "coupon", "coupon": made.id},
        "code": unique("C").replace("_", "-"),
        **params,
    }
    return client.v1.promotion_codes.create(params=code)


def test_a_promotion_code_names_its_coupon_under_promotion(client: stripe.StripeClient) -> None:
    code = _code(client, {"percent_off": 20, "duration": "forever", "name": "Twenty"})

    [listed] = client.v1.promotion_codes.list(
        params={"code": code.code.lower(), "active": True, "expand": ["data.promotion.coupon"]}
    ).data

    assert listed.id == code.id
    coupon = listed.promotion.coupon
    assert isinstance(coupon, stripe.Coupon)
    assert (coupon.percent_off, coupon.duration, coupon.name, coupon.valid) == (
        20,
        "forever",
        "Twenty",
        True,
    )


def test_a_redeemed_code_discounts_the_invoices_of_its_subscription(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)
    code = _code(client, {"percent_off": 25, "duration": "forever"}, max_redemptions=1)

    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"price": monthly(client, 2000).id}],
            "discounts": [{"promotion_code": code.id}],
            "expand": ["discounts", "latest_invoice"],
        }
    )

    [discount] = subscription.discounts
    assert isinstance(discount, stripe.Discount)
    assert discount.promotion_code == code.id
    invoice = subscription.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.subtotal, invoice.total, invoice.amount_paid) == (2000, 1500, 1500)
    assert [(d.amount, d.discount) for d in invoice.total_discount_amounts or []] == [
        (500, discount.id)
    ]
    assert client.v1.promotion_codes.retrieve(code.id).times_redeemed == 1


@pytest.mark.parametrize(
    ("coupon", "code_params", "message"),
    [
        ({"percent_off": 10}, {"active": False}, "not active"),
        ({"percent_off": 10}, {"expires_at": int(time.time()) + 1}, "expired"),
        ({"percent_off": 10, "applies_to": {"products": ["prod_other"]}}, {}, "does not apply"),
        ({"percent_off": 10}, {"restrictions": {"first_time_transaction": True}}, "first-time"),
        (
            {"percent_off": 10},
            {"restrictions": {"minimum_amount": 5000, "minimum_amount_currency": "usd"}},
            "at least",
        ),
    ],
)
def test_a_code_that_does_not_apply_is_refused(
    client: stripe.StripeClient,
    coupon: dict[str, object],
    code_params: dict[str, object],
    message: str,
) -> None:
    customer_id, _ = customer_with_card(client)
    price = monthly(client, 1000)
    # A customer who paid before (for first-time-only codes).
    client.v1.subscriptions.create(params={"customer": customer_id, "items": [{"price": price.id}]})
    code = _code(client, coupon, **code_params)
    time.sleep(1.1) if "expires_at" in code_params else None

    with pytest.raises(stripe.InvalidRequestError, match=message):
        client.v1.subscriptions.create(
            params={
                "customer": customer_id,
                "items": [{"price": price.id}],
                "discounts": [{"promotion_code": code.id}],
            }
        )


def test_a_preview_of_a_new_subscription_shows_the_discounted_first_invoice(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)
    code = _code(client, {"amount_off": 300, "currency": "usd", "duration": "once"})

    preview = client.v1.invoices.create_preview(
        params={
            "customer": customer_id,
            "subscription_details": {"items": [{"price": monthly(client, 1000).id}]},
            "discounts": [{"promotion_code": code.id}],
        }
    )

    assert (preview.subtotal, preview.total, preview.amount_due) == (1000, 700, 700)
    assert client.v1.promotion_codes.retrieve(code.id).times_redeemed == 0


def test_a_schedule_phase_keeps_the_discount_it_names(client: stripe.StripeClient) -> None:
    customer_id, _ = customer_with_card(client)
    code = _code(client, {"percent_off": 50, "duration": "forever"})
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"price": monthly(client, 4000).id}],
            "discounts": [{"promotion_code": code.id}],
        }
    )
    [discount_id] = subscription.discounts
    schedule = client.v1.subscription_schedules.create(
        params={"from_subscription": subscription.id}
    )
    assert [d.discount for d in schedule.phases[0].discounts] == [discount_id]
    cheaper = monthly(client, 2000)
    phase = schedule.phases[0]
    kept = [{"discount": str(discount_id)}]
    phases: Any = [
        {
            "items": [{"price": phase.items[0].price, "quantity": 1}],
            "start_date": phase.start_date,
            "end_date": phase.end_date,
            "discounts": kept,
        },
        {"items": [{"price": cheaper.id, "quantity": 1}], "discounts": kept},
    ]
    client.v1.subscription_schedules.update(
        schedule.id, params={"end_behavior": "release", "phases": phases}
    )

    emulator_only(client, f"subscriptions/{subscription.id}/end_period")

    after = client.v1.subscriptions.retrieve(subscription.id, params={"expand": ["latest_invoice"]})
    assert after.discounts == [discount_id]
    invoice = after.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.subtotal, invoice.total) == (2000, 1000)
