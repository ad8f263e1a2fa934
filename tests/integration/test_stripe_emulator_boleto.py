"""Boleto, the emulator's delayed payment method, as Stripe runs it at the pinned API version,
driven by the real `stripe` SDK (every request and response checked against its types by the
session's conformance check): the voucher a confirmation issues, paid or expired, for a
one-time payment, a subscription's first invoice (which ends incomplete_expired 23 hours on)
and a Checkout Session (`checkout.session.async_payment_*`)."""

import time

import pytest
import stripe
from stripe.params import CustomerCreateParams, PaymentIntentConfirmParamsPaymentMethodData

from tests.integration.stripe_emulator_helpers import (
    emulator_only,
    events_of,
    new_price,
    new_product,
    payment_intent_of,
    sdk_client,
    unique,
)

BOLETO: PaymentIntentConfirmParamsPaymentMethodData = {
    "type": "boleto",
    "boleto": {"tax_id": "000.000.000-00"},
    "billing_details": {
        "name": "Maria Silva",
        "email": "maria@example.com",
        "address": {
            "line1": "Av. Paulista, 1000",
            "city": "São Paulo",
            "state": "SP",
            "postal_code": "01310-100",
            "country": "BR",
        },
    },
}


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def customer(client: stripe.StripeClient, test_clock: str | None = None) -> str:
    params: CustomerCreateParams = {"email": f"{unique('boleto')}@example.com"}
    if test_clock is not None:
        params["test_clock"] = test_clock
    return client.v1.customers.create(params=params).id


def voucher_of(
    intent: stripe.PaymentIntent,
) -> stripe.PaymentIntent.NextAction.BoletoDisplayDetails:
    assert intent.next_action is not None
    assert intent.next_action.type == "boleto_display_details"
    details = intent.next_action.boleto_display_details
    assert details is not None
    return details


def boleto_payment(client: stripe.StripeClient, amount: int = 4990) -> stripe.PaymentIntent:
    intent = client.v1.payment_intents.create(
        params={"amount": amount, "currency": "brl", "customer": customer(client)}
    )
    assert sorted(intent.payment_method_types) == ["boleto", "card"]  # dynamic, in brl
    return client.v1.payment_intents.confirm(intent.id, params={"payment_method_data": BOLETO})


def test_a_boleto_payment_waits_for_its_voucher_then_succeeds_when_paid(
    client: stripe.StripeClient,
) -> None:
    intent = boleto_payment(client)

    assert intent.status == "requires_action"
    voucher = voucher_of(intent)
    assert voucher.expires_at is not None
    assert voucher.expires_at > time.time() + 2 * 86400
    assert voucher.hosted_voucher_url
    assert voucher.pdf
    assert voucher.number
    assert intent.payment_method_options is not None
    assert intent.payment_method_options.boleto is not None
    method = client.v1.payment_methods.retrieve(str(intent.payment_method))
    assert (method.type, method.card) == ("boleto", None)
    assert method.boleto is not None
    assert method.boleto.tax_id == "000.000.000-00"

    emulator_only(client, f"payment_intents/{intent.id}/boleto", outcome="pay")

    paid = client.v1.payment_intents.retrieve(intent.id)
    assert (paid.status, paid.next_action, paid.amount_received) == ("succeeded", None, 4990)
    charge = client.v1.charges.retrieve(str(paid.latest_charge))
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.type == "boleto"
    assert events_of(client, intent.id) == [
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
    ]


def test_an_expired_boleto_leaves_the_payment_requiring_a_payment_method(
    client: stripe.StripeClient,
) -> None:
    intent = boleto_payment(client)

    emulator_only(client, f"payment_intents/{intent.id}/boleto", outcome="expire")

    expired = client.v1.payment_intents.retrieve(intent.id)
    assert (expired.status, expired.payment_method) == ("requires_payment_method", None)
    assert expired.last_payment_error is not None
    assert expired.last_payment_error.code == "payment_intent_payment_attempt_expired"
    assert events_of(client, intent.id)[-1] == "payment_intent.payment_failed"
    # Nothing waits any more.
    with pytest.raises(stripe.InvalidRequestError):
        emulator_only(client, f"payment_intents/{intent.id}/boleto", outcome="pay")


def test_boleto_takes_brl_only_and_not_where_the_allowed_payment_methods_leave_it_out(
    client: stripe.StripeClient,
) -> None:
    in_dollars = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    assert in_dollars.payment_method_types == ["card"]
    cards_only = client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "brl", "allowed_payment_method_types": ["card"]}
    )
    assert cards_only.payment_method_types == ["card"]
    assert cards_only.allowed_payment_method_types == ["card"]

    for intent in (in_dollars, cards_only):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.payment_intents.confirm(intent.id, params={"payment_method_data": BOLETO})
        assert refused.value.code == "payment_intent_invalid_parameter"


def test_a_subscription_paid_by_boleto_is_incomplete_until_paid_and_expires_after_23_hours(
    client: stripe.StripeClient,
) -> None:
    price = new_price(client, new_product(client).id, currency="brl", unit_amount=9900)
    now = int(time.time())
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": now})
    subscriptions = []
    for _ in range(2):
        subscription = client.v1.subscriptions.create(
            params={
                "customer": customer(client, test_clock=clock.id),
                "items": [{"price": price.id}],
                "payment_behavior": "default_incomplete",
                "payment_settings": {"save_default_payment_method": "on_subscription"},
            }
        )
        intent_id = payment_intent_of(client, str(subscription.latest_invoice))
        intent = client.v1.payment_intents.confirm(
            intent_id, params={"payment_method_data": BOLETO}
        )
        assert intent.status == "requires_action"
        subscriptions.append((subscription.id, intent_id))
    (paid_id, paid_intent), (unpaid_id, unpaid_intent) = subscriptions
    # An intent of the invoice names it through the invoice's payments.
    [payment] = client.v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": paid_intent}}
    ).data
    assert payment.invoice == client.v1.subscriptions.retrieve(paid_id).latest_invoice

    emulator_only(client, f"payment_intents/{paid_intent}/boleto", outcome="pay")
    assert client.v1.subscriptions.retrieve(paid_id).status == "active"
    assert client.v1.subscriptions.retrieve(unpaid_id).status == "incomplete"

    client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": now + 23 * 60 * 60 + 60}
    )
    deadline = time.monotonic() + 10
    while client.v1.test_helpers.test_clocks.retrieve(clock.id).status != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    expired = client.v1.subscriptions.retrieve(unpaid_id)
    assert expired.status == "incomplete_expired"
    assert client.v1.invoices.retrieve(str(expired.latest_invoice)).status == "void"
    assert client.v1.payment_intents.retrieve(unpaid_intent).status == "canceled"
    assert events_of(client, unpaid_id)[-1] == "customer.subscription.deleted"
    assert client.v1.subscriptions.retrieve(paid_id).status == "active"


def test_checkout_paid_by_boleto_completes_unpaid_then_tells_how_the_voucher_ended(
    client: stripe.StripeClient,
) -> None:
    price = new_price(client, new_product(client).id, currency="brl", unit_amount=9900)
    sessions: dict[str, stripe.checkout.Session] = {}
    last_events: dict[str, str] = {}
    for outcome in ("pay", "expire"):
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "customer": customer(client),
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": "https://app.example/done",
            }
        )
        assert sorted(session.payment_method_types) == ["boleto", "card"]
        boleto = client.v1.payment_methods.create(params=dict(BOLETO))  # type: ignore[arg-type]
        completed = emulator_only(
            client, f"checkout/sessions/{session.id}/complete", payment_method=boleto.id
        )
        assert (completed["status"], completed["payment_status"]) == ("complete", "unpaid")
        assert client.v1.subscriptions.retrieve(completed["subscription"]).status == "incomplete"
        intent_id = payment_intent_of(client, completed["invoice"])
        emulator_only(client, f"payment_intents/{intent_id}/boleto", outcome=outcome)
        sessions[outcome] = client.v1.checkout.sessions.retrieve(session.id)
        assert events_of(client, session.id)[0] == "checkout.session.completed"
        last_events[outcome] = events_of(client, session.id)[-1]

    assert sessions["pay"].payment_status == "paid"
    assert last_events["pay"] == "checkout.session.async_payment_succeeded"
    assert sessions["expire"].payment_status == "unpaid"
    assert last_events["expire"] == "checkout.session.async_payment_failed"


def test_a_checkout_restricted_to_cards_refuses_a_boleto(client: stripe.StripeClient) -> None:
    price = new_price(client, new_product(client).id, currency="brl", unit_amount=9900)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer(client),
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://app.example/done",
            "allowed_payment_method_types": ["card"],
        }
    )
    assert session.payment_method_types == ["card"]
    boleto = client.v1.payment_methods.create(params=dict(BOLETO))  # type: ignore[arg-type]
    with pytest.raises(stripe.InvalidRequestError):
        emulator_only(client, f"checkout/sessions/{session.id}/complete", payment_method=boleto.id)
