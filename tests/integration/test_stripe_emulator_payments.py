"""The emulator's payments as Stripe makes them at the pinned API version, driven by the real
`stripe` SDK: object shapes, Stripe's test cards (declines, 3-D Secure), refunds, disputes and
test clocks."""

import time
from typing import Unpack

import pytest
import stripe
from stripe.params import CustomerCreateParams, PaymentIntentCreateParams
from tatame_devstack.stripe_emulator.render import ONLY_WHEN_GIVEN, fields, includable_fields

from tests.integration.stripe_emulator_helpers import (
    emulator_only,
    events_of,
    monthly,
    new_price,
    new_product,
    payment_intent_of,
    sdk_client,
    unique,
)
from tests.integration.stripe_fields import expanded as expanded_field
from tests.integration.stripe_fields import id_of, present


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def assert_pinned_shape(obj: stripe.StripeObject, resource: type[stripe.StripeObject]) -> None:
    """`obj` has exactly the fields that `resource` declares at the pinned version, but for
    the includable ones (sent only when expanded)."""
    # A class is hashable; mypy reads StripeObject's `__hash__` (of instances) for the class.
    expected = set(fields(resource)) - includable_fields(resource) - ONLY_WHEN_GIVEN  # type: ignore[arg-type]
    assert set(obj.to_dict()) == expected


def new_customer(
    client: stripe.StripeClient, **params: Unpack[CustomerCreateParams]
) -> stripe.Customer:
    return client.v1.customers.create(params={"email": f"{unique('pay')}@example.com", **params})


def with_default_card(client: stripe.StripeClient, customer_id: str, card: str) -> str:
    payment_method = client.v1.payment_methods.attach(card, params={"customer": customer_id})
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": payment_method.id}}
    )
    return payment_method.id


def payment(
    client: stripe.StripeClient, amount: int = 1500, *, confirm_with: str | None = None
) -> stripe.PaymentIntent:
    """A new customer's payment of `amount` cents, confirmed with `confirm_with` if given."""
    customer = new_customer(client)
    params: PaymentIntentCreateParams = {
        "amount": amount,
        "currency": "usd",
        "customer": customer.id,
    }
    if confirm_with is not None:
        params["confirm"] = True
        params["payment_method"] = confirm_with
    return client.v1.payment_intents.create(params=params)


def paid(client: stripe.StripeClient, amount: int = 1500) -> stripe.PaymentIntent:
    intent = payment(client, amount)
    return client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})


# --- Shapes ------------------------------------------------------------------------------------


def test_every_object_has_exactly_the_fields_of_the_pinned_version(
    client: stripe.StripeClient,
) -> None:
    customer = new_customer(client, name="Ana", address={"country": "PT", "city": "Porto"})
    product = new_product(client)
    price = new_price(client, product.id)
    intent = paid(client)
    setup = client.v1.setup_intents.create(params={"customer": customer.id})
    card = client.v1.payment_methods.retrieve("pm_card_visa")
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id}],
            "success_url": "https://app.example/done",
        }
    )
    portal = client.v1.billing_portal.sessions.create(params={"customer": customer.id})
    key = client.v1.ephemeral_keys.create(
        params={"customer": customer.id}, options={"stripe_version": "2020-08-27"}
    )
    assert intent.latest_charge is not None
    charge = client.v1.charges.retrieve(id_of(intent.latest_charge))
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    dispute = client.v1.disputes.retrieve(
        emulator_only(client, f"charges/{charge.id}/dispute")["id"]
    )
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": int(time.time())})

    for obj, resource in (
        (customer, stripe.Customer),
        (product, stripe.Product),
        (price, stripe.Price),
        (intent, stripe.PaymentIntent),
        (setup, stripe.SetupIntent),
        (card, stripe.PaymentMethod),
        (session, stripe.checkout.Session),
        (portal, stripe.billing_portal.Session),
        (key, stripe.EphemeralKey),
        (charge, stripe.Charge),
        (refund, stripe.Refund),
        (dispute, stripe.Dispute),
        (clock, stripe.test_helpers.TestClock),
    ):
        assert_pinned_shape(obj, resource)
    assert card.card is not None
    assert set(card.card.to_dict()) == set(fields(stripe.PaymentMethod.Card))
    assert customer.invoice_settings is not None
    assert customer.tax_exempt == "none"
    assert customer.address is not None
    assert set(customer.address.to_dict()) == set(fields(stripe.Customer.Address))
    assert "sources" not in customer
    assert "account_balance" not in customer


def test_expanding_a_customers_subscriptions_renders_them(client: stripe.StripeClient) -> None:
    customer = new_customer(client)
    with_default_card(client, customer.id, "pm_card_visa")
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": monthly(client, 900).id}]}
    )

    expanded = client.v1.customers.retrieve(customer.id, params={"expand": ["subscriptions"]})

    assert expanded.subscriptions is not None
    assert [s.id for s in expanded.subscriptions.data] == [subscription.id]


# --- Payment intents and Stripe's test cards ----------------------------------------------------


def test_a_payment_intent_has_automatic_payment_methods_and_a_card_pays_it_with_a_charge(
    client: stripe.StripeClient,
) -> None:
    intent = payment(client, 2500)
    assert intent.status == "requires_payment_method"
    assert intent.automatic_payment_methods is not None
    assert intent.automatic_payment_methods.enabled
    assert intent.payment_method_types == ["card"]
    assert intent.latest_charge is None

    confirmed = client.v1.payment_intents.confirm(
        intent.id, params={"payment_method": "pm_card_visa"}
    )

    assert (confirmed.status, confirmed.amount_received) == ("succeeded", 2500)
    assert id_of(confirmed.latest_charge).startswith("ch_")
    charge = client.v1.charges.retrieve(id_of(confirmed.latest_charge))
    assert (charge.status, charge.paid, charge.amount_captured) == ("succeeded", True, 2500)
    assert charge.payment_intent == intent.id
    expanded = client.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge"]})
    assert expanded_field(expanded.latest_charge).to_dict() == charge.to_dict()
    assert "payment_intent.succeeded" in events_of(client, intent.id)
    assert "charge.succeeded" in events_of(client, charge.id)
    listed = client.v1.charges.list(params={"payment_intent": intent.id})
    assert [c.id for c in listed.data] == [charge.id]


def test_a_declined_card_is_a_card_error_and_the_intent_waits_for_another_payment_method(
    client: stripe.StripeClient,
) -> None:
    intent = payment(client)

    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.confirm(
            intent.id, params={"payment_method": "pm_card_chargeDeclined"}
        )

    assert (declined.value.code, present(declined.value.error).decline_code) == (
        "card_declined",
        "generic_decline",
    )
    after = client.v1.payment_intents.retrieve(intent.id)
    assert (after.status, after.payment_method) == ("requires_payment_method", None)
    error = after.last_payment_error
    assert error is not None
    assert (error.type, error.code, error.decline_code) == (
        "card_error",
        "card_declined",
        "generic_decline",
    )
    assert error.charge == after.latest_charge
    assert error.payment_method is not None
    assert client.v1.charges.retrieve(id_of(error.charge)).status == "failed"
    assert "payment_intent.payment_failed" in events_of(client, intent.id)

    retried = client.v1.payment_intents.confirm(
        intent.id, params={"payment_method": "pm_card_visa"}
    )
    assert (retried.status, retried.last_payment_error) == ("succeeded", None)


def test_an_intent_created_with_confirm_true_is_paid_at_once(client: stripe.StripeClient) -> None:
    intent = payment(client, confirm_with="pm_card_visa")

    assert intent.status == "succeeded"
    assert intent.latest_charge is not None


def test_an_unpaid_intent_is_canceled_with_its_reason_and_a_paid_one_cannot_be(
    client: stripe.StripeClient,
) -> None:
    intent = payment(client)

    canceled = client.v1.payment_intents.cancel(
        intent.id, params={"cancellation_reason": "abandoned"}
    )

    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    assert canceled.canceled_at is not None
    assert "payment_intent.canceled" in events_of(client, intent.id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.cancel(paid(client).id)
    assert refused.value.code == "payment_intent_unexpected_state"


def test_authentication_required_waits_for_the_card_holder_who_passes_or_fails(
    client: stripe.StripeClient,
) -> None:
    passing, failing = payment(client), payment(client)
    for intent in (passing, failing):
        waiting = client.v1.payment_intents.confirm(
            intent.id, params={"payment_method": "pm_card_authenticationRequired"}
        )
        assert waiting.status == "requires_action"
        assert waiting.next_action is not None
        assert waiting.next_action.type == "use_stripe_sdk"
        assert waiting.latest_charge is None

    emulator_only(client, f"payment_intents/{passing.id}/authenticate", outcome="succeed")
    emulator_only(client, f"payment_intents/{failing.id}/authenticate", outcome="fail")

    assert client.v1.payment_intents.retrieve(passing.id).status == "succeeded"
    failed = client.v1.payment_intents.retrieve(failing.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error is not None
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"
    assert "payment_intent.requires_action" in events_of(client, failing.id)
    assert "payment_intent.payment_failed" in events_of(client, failing.id)
    with pytest.raises(stripe.InvalidRequestError):
        emulator_only(client, f"payment_intents/{failing.id}/authenticate", outcome="succeed")


def test_setup_intents_save_a_card_refuse_a_declined_one_and_wait_for_authentication(
    client: stripe.StripeClient,
) -> None:
    customer = new_customer(client)

    def setup(card: str) -> stripe.SetupIntent:
        intent = client.v1.setup_intents.create(params={"customer": customer.id})
        return client.v1.setup_intents.confirm(intent.id, params={"payment_method": card})

    saved = setup("pm_card_chargeCustomerFail")  # attaching it succeeds
    assert saved.status == "succeeded"
    with pytest.raises(stripe.CardError) as declined:
        setup("pm_card_chargeDeclined")
    assert declined.value.code == "card_declined"
    waiting = setup("pm_card_authenticationRequired")
    assert waiting.status == "requires_action"
    assert waiting.next_action is not None

    emulator_only(client, f"setup_intents/{waiting.id}/authenticate", outcome="succeed")
    assert events_of(client, waiting.id) == [
        "setup_intent.created",
        "setup_intent.requires_action",
        "setup_intent.succeeded",
    ]

    methods = client.v1.customers.payment_methods.list(customer.id)
    assert {pm.id for pm in methods.data} == {
        saved.payment_method,
        client.v1.setup_intents.retrieve(waiting.id).payment_method,
    }


def test_a_subscription_charged_to_a_declining_card_starts_incomplete_with_a_failed_payment(
    client: stripe.StripeClient,
) -> None:
    customer = new_customer(client)
    with_default_card(client, customer.id, "pm_card_chargeCustomerFail")

    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": monthly(client, 1200).id}],
            "expand": ["latest_invoice"],
        }
    )

    assert subscription.status == "incomplete"
    invoices = client.v1.invoices.list(params={"subscription": subscription.id}).data
    assert [invoice.status for invoice in invoices] == ["open"]
    assert "invoice.payment_failed" in events_of(client, invoices[0].id)


def test_a_subscription_whose_card_asks_for_authentication_waits_for_it_then_activates(
    client: stripe.StripeClient,
) -> None:
    customer = new_customer(client)
    with_default_card(client, customer.id, "pm_card_authenticationRequired")

    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": monthly(client, 1100).id}]}
    )
    [invoice] = client.v1.invoices.list(params={"subscription": subscription.id}).data
    intent_id = payment_intent_of(client, invoice.id)
    waiting = client.v1.payment_intents.retrieve(intent_id)

    assert subscription.status == "incomplete"
    assert invoice.status == "open"
    assert waiting.status == "requires_action"
    assert waiting.next_action is not None

    emulator_only(client, f"payment_intents/{intent_id}/authenticate", outcome="succeed")

    assert client.v1.subscriptions.retrieve(subscription.id).status == "active"
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
