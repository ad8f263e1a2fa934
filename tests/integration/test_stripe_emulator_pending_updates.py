"""The emulator's pending updates (`payment_behavior=pending_if_incomplete`) as Stripe runs them,
driven by the real `stripe` SDK: a change whose invoice is not paid at once is held, applied once
paid, discarded at its expiry."""

import time

import pytest
import stripe

from tests.integration.stripe_emulator_helpers import (
    customer_with_card,
    emulator_only,
    events_of,
    monthly,
    payment_intent_of,
    sdk_client,
)

HOUR = 60 * 60


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def paid_subscription(client: stripe.StripeClient, then_card: str) -> stripe.Subscription:
    """An active subscription of 10.00 a month, paid with pm_card_visa, whose customer's default
    card is then `then_card`."""
    customer_id, _ = customer_with_card(client)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 1000).id}]}
    )
    card = client.v1.payment_methods.attach(then_card, params={"customer": customer_id})
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    assert subscription.status == "active"
    return subscription


def upgrade(
    client: stripe.StripeClient, subscription: stripe.Subscription, proration: str
) -> stripe.Subscription:
    """Change to 30.00 a month with `pending_if_incomplete`."""
    return client.v1.subscriptions.update(
        subscription.id,
        params={
            "items": [{"id": subscription["items"].data[0].id, "price": monthly(client, 3000).id}],
            "proration_behavior": proration,
            "payment_behavior": "pending_if_incomplete",
        },
    )


def price_of(subscription: stripe.Subscription) -> int | None:
    return subscription["items"].data[0].price.unit_amount


def test_a_change_whose_payment_is_declined_is_held_as_a_pending_update(
    client: stripe.StripeClient,
) -> None:
    subscription = paid_subscription(client, "pm_card_chargeCustomerFail")

    held = upgrade(client, subscription, "always_invoice")

    assert held.status == "active"
    assert price_of(held) == 1000
    assert held.pending_update is not None
    assert held.pending_update.subscription_items is not None
    [item] = held.pending_update.subscription_items
    assert item.price.unit_amount == 3000
    assert time.time() < held.pending_update.expires_at <= time.time() + 23 * HOUR + 5
    assert isinstance(held.latest_invoice, str)
    invoice = client.v1.invoices.retrieve(held.latest_invoice)
    assert invoice.status == "open"
    assert "invoice.payment_failed" in events_of(client, invoice.id)


def test_a_held_change_applies_once_its_invoice_is_paid_with_another_card(
    client: stripe.StripeClient,
) -> None:
    held = upgrade(
        client, paid_subscription(client, "pm_card_chargeCustomerFail"), "always_invoice"
    )
    assert isinstance(held.latest_invoice, str)
    intent_id = payment_intent_of(client, held.latest_invoice)

    client.v1.payment_intents.confirm(intent_id, params={"payment_method": "pm_card_visa"})

    applied = client.v1.subscriptions.retrieve(held.id)
    assert price_of(applied) == 3000
    assert applied.pending_update is None
    assert applied.status == "active"
    events = events_of(client, held.id)
    assert events[-2:] == [
        "customer.subscription.pending_update_applied",
        "customer.subscription.updated",
    ]


def test_a_change_that_needs_authentication_applies_once_the_card_holder_answers(
    client: stripe.StripeClient,
) -> None:
    held = upgrade(
        client, paid_subscription(client, "pm_card_authenticationRequired"), "always_invoice"
    )
    assert isinstance(held.latest_invoice, str)
    assert price_of(held) == 1000
    assert "invoice.payment_action_required" in events_of(client, held.latest_invoice)
    intent_id = payment_intent_of(client, held.latest_invoice)
    assert client.v1.payment_intents.retrieve(intent_id).status == "requires_action"

    emulator_only(client, f"payment_intents/{intent_id}/authenticate", outcome="succeed")

    applied = client.v1.subscriptions.retrieve(held.id)
    assert price_of(applied) == 3000
    assert applied.pending_update is None


def test_a_held_change_unpaid_at_its_expiry_is_discarded_and_its_invoice_voided(
    client: stripe.StripeClient,
) -> None:
    held = upgrade(
        client, paid_subscription(client, "pm_card_chargeCustomerFail"), "always_invoice"
    )
    assert isinstance(held.latest_invoice, str)

    emulator_only(client, f"subscriptions/{held.id}/end_period")

    after = client.v1.subscriptions.retrieve(held.id)
    assert after.pending_update is None
    assert price_of(after) == 1000
    assert client.v1.invoices.retrieve(held.latest_invoice).status == "void"
    assert "customer.subscription.pending_update_expired" in events_of(client, held.id)


def test_a_change_that_makes_no_invoice_now_applies_at_once(client: stripe.StripeClient) -> None:
    subscription = paid_subscription(client, "pm_card_chargeCustomerFail")

    changed = upgrade(client, subscription, "create_prorations")

    assert price_of(changed) == 3000
    assert changed.pending_update is None


def test_a_pending_update_cannot_carry_metadata(client: stripe.StripeClient) -> None:
    subscription = paid_subscription(client, "pm_card_visa")

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.update(
            subscription.id,
            params={"metadata": {"a": "b"}, "payment_behavior": "pending_if_incomplete"},
        )

    assert refused.value.param == "payment_behavior"
