"""Test clocks (Stripe's test helper API) in the emulator, driven by the real `stripe` SDK as a
test against Stripe's test mode would drive them: advance, wait until ready, look."""

import time

import pytest
import stripe

from tests.integration.stripe_emulator_helpers import (
    emulator_only,
    events_of,
    monthly,
    payment_intent_of,
    sdk_client,
    unique,
)

DAY = 24 * 60 * 60


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def new_clock(client: stripe.StripeClient, ago: int = 0) -> stripe.test_helpers.TestClock:
    """A clock frozen `ago` seconds before now."""
    return client.v1.test_helpers.test_clocks.create(
        params={"frozen_time": int(time.time()) - ago, "name": unique("clock")}
    )


def customer_on(client: stripe.StripeClient, clock_id: str, card: str = "pm_card_visa") -> str:
    customer = client.v1.customers.create(
        params={"email": f"{unique('clock')}@example.com", "test_clock": clock_id}
    )
    payment_method = client.v1.payment_methods.attach(card, params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": payment_method.id}}
    )
    return customer.id


def advanced(
    client: stripe.StripeClient, clock_id: str, frozen_time: int
) -> stripe.test_helpers.TestClock:
    """Advance the clock and wait until it is ready again, as against Stripe's test mode."""
    advancing = client.v1.test_helpers.test_clocks.advance(
        clock_id, params={"frozen_time": frozen_time}
    )
    assert advancing.status in ("advancing", "ready")
    deadline = time.monotonic() + 30
    while (clock := client.v1.test_helpers.test_clocks.retrieve(clock_id)).status != "ready":
        assert time.monotonic() < deadline, "the test clock never became ready"
        time.sleep(0.05)
    return clock


def period_end(subscription: stripe.Subscription) -> int:
    return subscription["items"].data[0].current_period_end


def invoices_of(client: stripe.StripeClient, subscription_id: str) -> list[stripe.Invoice]:
    """The subscription's invoices, oldest first."""
    listed = client.v1.invoices.list(params={"subscription": subscription_id, "limit": 100})
    return sorted(listed.data, key=lambda invoice: (invoice.created, invoice.period_start))


def test_a_test_clock_is_created_advanced_listed_and_deleted_with_its_customers(
    client: stripe.StripeClient,
) -> None:
    clock = new_clock(client, ago=DAY)
    customer_id = customer_on(client, clock.id)

    assert (clock.status, clock.livemode) == ("ready", False)
    assert clock.deletes_after > clock.created
    customer = client.v1.customers.retrieve(customer_id)
    assert (customer.test_clock, customer.created) == (clock.id, clock.frozen_time)
    moved = advanced(client, clock.id, clock.frozen_time + 3600)
    assert moved.frozen_time == clock.frozen_time + 3600
    assert moved.status_details is not None
    assert moved.status_details.advancing is None
    assert clock.id in [c.id for c in client.v1.test_helpers.test_clocks.list().data]
    assert events_of(client, clock.id) == [
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
    ]
    with pytest.raises(stripe.InvalidRequestError) as backwards:
        client.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": clock.frozen_time}
        )
    assert backwards.value.param == "frozen_time"

    deleted = client.v1.test_helpers.test_clocks.delete(clock.id)

    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve(customer_id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"test_clock": clock.id})


def test_a_trial_that_the_clock_passes_ends_with_its_first_paid_invoice(
    client: stripe.StripeClient,
) -> None:
    clock = new_clock(client)
    customer_id = customer_on(client, clock.id)
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"price": monthly(client, 1900).id}],
            "trial_period_days": 7,
        }
    )
    assert subscription.status == "trialing"
    assert subscription.trial_end is not None

    advanced(client, clock.id, subscription.trial_end + 60)

    after = client.v1.subscriptions.retrieve(subscription.id)
    assert after.status == "active"
    first_paid = invoices_of(client, subscription.id)[-1]
    assert (first_paid.status, first_paid.amount_paid) == ("paid", 1900)


def cardless_trial(
    client: stripe.StripeClient, clock_id: str, missing_payment_method: str
) -> stripe.Subscription:
    """A 7-day trial of a customer with no payment method, ending as `missing_payment_method`
    says when none is saved by then."""
    customer = client.v1.customers.create(
        params={"email": f"{unique('trial')}@example.com", "test_clock": clock_id}
    )
    return client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": monthly(client, 1900).id}],
            "trial_period_days": 7,
            "payment_behavior": "default_incomplete",
            "trial_settings": {"end_behavior": {"missing_payment_method": missing_payment_method}},
        }
    )


def test_a_trial_that_ends_without_a_payment_method_is_canceled_when_so_set(
    client: stripe.StripeClient,
) -> None:
    clock = new_clock(client)
    subscription = cardless_trial(client, clock.id, "cancel")
    assert subscription.trial_settings is not None
    assert subscription.trial_settings.end_behavior.missing_payment_method == "cancel"
    assert subscription.trial_end is not None

    advanced(client, clock.id, subscription.trial_end + 60)

    after = client.v1.subscriptions.retrieve(subscription.id)
    assert (after.status, after.ended_at) == ("canceled", subscription.trial_end)
    assert [invoice.total for invoice in invoices_of(client, subscription.id)] == [0]
    assert events_of(client, subscription.id)[-1] == "customer.subscription.deleted"


def test_a_trial_whose_card_was_saved_or_set_to_invoice_anyway_is_invoiced_at_its_end(
    client: stripe.StripeClient,
) -> None:
    clock = new_clock(client)
    saved = cardless_trial(client, clock.id, "cancel")
    assert isinstance(saved.pending_setup_intent, str)
    client.v1.setup_intents.confirm(
        saved.pending_setup_intent, params={"payment_method": "pm_card_visa"}
    )
    invoicing = cardless_trial(client, clock.id, "create_invoice")
    assert invoicing.trial_end is not None

    advanced(client, clock.id, invoicing.trial_end + 60)

    paid = client.v1.subscriptions.retrieve(saved.id)
    assert paid.status == "active"
    assert invoices_of(client, saved.id)[-1].status == "paid"
    unpaid = client.v1.subscriptions.retrieve(invoicing.id)
    assert unpaid.status == "past_due"  # invoiced, and nothing to charge it to
    assert invoices_of(client, invoicing.id)[-1].status == "open"


def test_a_trial_end_behaviour_the_emulator_lacks_is_refused(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        cardless_trial(client, new_clock(client).id, "pause")

    assert refused.value.param == "trial_settings[end_behavior][missing_payment_method]"


def test_a_monthly_subscription_renews_when_the_clock_passes_its_period_end(
    client: stripe.StripeClient,
) -> None:
    clock = new_clock(client)
    customer_id = customer_on(client, clock.id)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 2900).id}]}
    )
    first_end = period_end(subscription)

    advanced(client, clock.id, first_end + DAY)

    renewed = client.v1.subscriptions.retrieve(subscription.id)
    assert renewed.status == "active"
    assert renewed["items"].data[0].current_period_start == first_end
    invoices = invoices_of(client, subscription.id)
    assert [invoice.status for invoice in invoices] == ["paid", "paid"]
    assert invoices[-1].amount_paid == 2900


def test_a_renewal_charged_to_a_card_that_declines_leaves_the_subscription_past_due(
    client: stripe.StripeClient,
) -> None:
    clock = new_clock(client)
    customer_id = customer_on(client, clock.id)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 1500).id}]}
    )
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer_id}
    )
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": failing.id}}
    )

    advanced(client, clock.id, period_end(subscription) + DAY)

    assert client.v1.subscriptions.retrieve(subscription.id).status == "past_due"
    renewal = invoices_of(client, subscription.id)[-1]
    assert (renewal.status, renewal.amount_paid) == ("open", 0)
    assert "invoice.payment_failed" in events_of(client, renewal.id)


def test_a_subscription_of_a_customer_on_another_clock_does_not_move(
    client: stripe.StripeClient,
) -> None:
    clock, other = new_clock(client), new_clock(client)
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer_on(client, other.id),
            "items": [{"price": monthly(client, 700).id}],
        }
    )

    advanced(client, clock.id, period_end(subscription) + DAY)

    assert len(invoices_of(client, subscription.id)) == 1


def test_a_cancellation_planned_for_the_period_end_happens_when_the_clock_passes_it(
    client: stripe.StripeClient,
) -> None:
    clock = new_clock(client)
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer_on(client, clock.id),
            "items": [{"price": monthly(client, 1000).id}],
        }
    )
    client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})

    advanced(client, clock.id, period_end(subscription) + DAY)

    ended = client.v1.subscriptions.retrieve(subscription.id)
    assert (ended.status, ended.ended_at) == ("canceled", period_end(subscription))
    assert len(invoices_of(client, subscription.id)) == 1


def test_a_schedules_next_phase_starts_when_the_clock_passes_the_phase_end(
    client: stripe.StripeClient,
) -> None:
    clock = new_clock(client)
    pro, basic = monthly(client, 3000), monthly(client, 1000)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer_on(client, clock.id), "items": [{"price": pro.id}]}
    )
    schedule = client.v1.subscription_schedules.create(
        params={"from_subscription": subscription.id}
    )
    phase = schedule.current_phase
    assert phase is not None
    client.v1.subscription_schedules.update(
        schedule.id,
        params={
            "end_behavior": "release",
            "phases": [
                {
                    "items": [{"price": pro.id, "quantity": 1}],
                    "start_date": phase.start_date,
                    "end_date": phase.end_date,
                },
                {"items": [{"price": basic.id, "quantity": 1}], "duration": {"interval": "month"}},
            ],
        },
    )

    advanced(client, clock.id, phase.end_date + DAY)

    moved = client.v1.subscriptions.retrieve(subscription.id)
    assert moved["items"].data[0].price.id == basic.id
    assert invoices_of(client, subscription.id)[-1].amount_paid == 1000


def test_a_renewal_that_asks_for_authentication_is_past_due_until_the_card_holder_answers(
    client: stripe.StripeClient,
) -> None:
    clock = new_clock(client)
    customer_id = customer_on(client, clock.id)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 2100).id}]}
    )
    card = client.v1.payment_methods.attach(
        "pm_card_authenticationRequired", params={"customer": customer_id}
    )
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )

    advanced(client, clock.id, period_end(subscription) + DAY)

    renewal = invoices_of(client, subscription.id)[-1]
    intent_id = payment_intent_of(client, renewal.id)
    assert client.v1.payment_intents.retrieve(intent_id).status == "requires_action"
    assert client.v1.subscriptions.retrieve(subscription.id).status == "past_due"

    emulator_only(client, f"payment_intents/{intent_id}/authenticate", outcome="succeed")

    assert client.v1.invoices.retrieve(renewal.id).status == "paid"
    assert client.v1.subscriptions.retrieve(subscription.id).status == "active"


def test_an_open_renewal_is_paid_on_request_after_a_decline_and_an_authentication(
    client: stripe.StripeClient,
) -> None:
    clock = new_clock(client)
    customer_id = customer_on(client, clock.id)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 2100).id}]}
    )
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer_id}
    )
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": failing.id}}
    )
    advanced(client, clock.id, period_end(subscription) + DAY)
    renewal = invoices_of(client, subscription.id)[-1]
    assert (renewal.status, client.v1.subscriptions.retrieve(subscription.id).status) == (
        "open",
        "past_due",
    )

    with pytest.raises(stripe.CardError) as declined:
        client.v1.invoices.pay(renewal.id)
    assert declined.value.error is not None
    assert (declined.value.code, declined.value.error.decline_code) == (
        "card_declined",
        "generic_decline",
    )
    other_customer = client.v1.customers.create(params={"email": f"{unique('o')}@example.com"})
    strangers = client.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": other_customer.id}
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(renewal.id, params={"payment_method": strangers.id})

    asking = client.v1.payment_methods.attach(
        "pm_card_authenticationRequired", params={"customer": customer_id}
    )
    with pytest.raises(stripe.CardError) as waiting:
        client.v1.invoices.pay(
            renewal.id, params={"payment_method": asking.id, "off_session": False}
        )
    assert waiting.value.code == "invoice_payment_intent_requires_action"
    intent = client.v1.payment_intents.retrieve(payment_intent_of(client, renewal.id))
    assert (intent.status, intent.payment_method) == ("requires_action", asking.id)
    assert client.v1.invoices.retrieve(renewal.id).status == "open"
    happened = events_of(client, renewal.id)
    assert happened.count("invoice.payment_failed") == 2  # the renewal, then the first pay
    assert happened[-1] == "invoice.payment_action_required"

    emulator_only(client, f"payment_intents/{intent.id}/authenticate", outcome="succeed")

    assert client.v1.invoices.retrieve(renewal.id).status == "paid"
    assert client.v1.subscriptions.retrieve(subscription.id).status == "active"
    assert "invoice.paid" in events_of(client, renewal.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(renewal.id)
