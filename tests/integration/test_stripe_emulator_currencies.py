"""The emulator's prices in several currencies (`currency_options`) and Stripe's one currency
per customer, driven by the real `stripe` SDK (every request and answer is checked against
Stripe's API at the pinned version by the session's emulator)."""

import pytest
import stripe

from tests.integration.stripe_emulator_helpers import (
    customer_with_card,
    emulator_only,
    new_product,
    raw,
    sdk_client,
)

BRL_AMOUNT = 4990


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def usd_and_brl(client: stripe.StripeClient, unit_amount: int = 1000) -> stripe.Price:
    """A monthly price of `unit_amount` usd, or BRL_AMOUNT brl."""
    return client.v1.prices.create(
        params={
            "product": new_product(client).id,
            "currency": "usd",
            "unit_amount": unit_amount,
            "recurring": {"interval": "month"},
            "currency_options": {"brl": {"unit_amount": BRL_AMOUNT}},
        }
    )


def test_currency_options_are_sent_only_when_expanded_with_the_price_s_own_currency(
    client,
) -> None:
    price = usd_and_brl(client)

    assert "currency_options" not in raw(client, "get", f"/v1/prices/{price.id}")
    expanded = client.v1.prices.retrieve(price.id, params={"expand": ["currency_options"]})
    assert expanded.currency_options is not None
    options = {c: o["unit_amount"] for c, o in expanded.currency_options.to_dict().items()}
    assert options == {"usd": 1000, "brl": BRL_AMOUNT}
    listed = client.v1.prices.list(
        params={"product": price.product, "expand": ["data.currency_options"]}
    )
    [one] = listed.data
    assert one.currency_options is not None
    assert "brl" in one.currency_options


def test_a_currency_option_is_added_by_an_update_and_announced_by_price_updated(client) -> None:
    price = usd_and_brl(client)

    client.v1.prices.update(price.id, params={"currency_options": {"eur": {"unit_amount": 900}}})

    expanded = client.v1.prices.retrieve(price.id, params={"expand": ["currency_options"]})
    assert expanded.currency_options is not None
    assert set(expanded.currency_options.to_dict()) == {"usd", "brl", "eur"}
    updates = client.v1.events.list(params={"type": "price.updated", "limit": 100}).data
    assert any(event.data.object["id"] == price.id for event in updates)


def test_the_price_s_own_currency_is_no_option(client) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.prices.create(
            params={
                "product": new_product(client).id,
                "currency": "usd",
                "unit_amount": 1000,
                "currency_options": {"usd": {"unit_amount": 900}},
            }
        )
    assert refused.value.param == "currency_options[usd]"


def test_a_subscription_in_an_option_s_currency_bills_the_option_s_amount(client) -> None:
    customer_id, _ = customer_with_card(client)
    price = usd_and_brl(client)

    subscription = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": price.id}], "currency": "brl"}
    )

    assert (subscription.status, subscription.currency) == ("active", "brl")
    assert isinstance(subscription.latest_invoice, str)
    invoice = client.v1.invoices.retrieve(subscription.latest_invoice)
    assert (invoice.currency, invoice.amount_paid) == ("brl", BRL_AMOUNT)
    assert client.v1.customers.retrieve(customer_id).currency == "brl"


def test_a_currency_the_price_lacks_is_refused(client) -> None:
    customer_id, _ = customer_with_card(client)
    price = usd_and_brl(client)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.create(
            params={"customer": customer_id, "items": [{"price": price.id}], "currency": "eur"}
        )
    assert refused.value.param == "currency"


def test_a_customer_with_a_currency_cannot_subscribe_in_another(client) -> None:
    customer_id, _ = customer_with_card(client)
    first = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": usd_and_brl(client).id}]}
    )
    client.v1.subscriptions.cancel(first.id)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.create(
            params={
                "customer": customer_id,
                "items": [{"price": usd_and_brl(client).id}],
                "currency": "brl",
            }
        )
    assert refused.value.http_status == 400
    assert str(refused.value.user_message).startswith(
        "You cannot combine currencies on a single customer."
    )


def test_a_checkout_session_in_an_option_s_currency_starts_a_subscription_in_it(client) -> None:
    customer = client.v1.customers.create(params={"email": "brl@example.com"})
    price = usd_and_brl(client)

    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://app.example/ok",
            "currency": "brl",
        }
    )
    assert (session.currency, session.amount_total) == ("brl", BRL_AMOUNT)
    emulator_only(client, f"checkout/sessions/{session.id}/complete")

    completed = client.v1.checkout.sessions.retrieve(session.id)
    assert isinstance(completed.subscription, str)
    assert client.v1.subscriptions.retrieve(completed.subscription).currency == "brl"


def test_a_plan_change_keeps_the_subscription_s_currency(client) -> None:
    customer_id, _ = customer_with_card(client)
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"price": usd_and_brl(client).id}],
            "currency": "brl",
        }
    )
    dearer = client.v1.prices.create(
        params={
            "product": new_product(client).id,
            "currency": "usd",
            "unit_amount": 2000,
            "recurring": {"interval": "month"},
            "currency_options": {"brl": {"unit_amount": 2 * BRL_AMOUNT}},
        }
    )

    changed = client.v1.subscriptions.update(
        subscription.id,
        params={
            "items": [{"id": subscription["items"].data[0].id, "price": dearer.id}],
            "proration_behavior": "always_invoice",
        },
    )

    assert changed.currency == "brl"
    assert isinstance(changed.latest_invoice, str)
    invoice = client.v1.invoices.retrieve(changed.latest_invoice)
    assert invoice.currency == "brl"
    assert invoice.total > 0


def test_a_scheduled_change_starts_in_the_subscription_s_currency(client) -> None:
    customer_id, _ = customer_with_card(client)
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"price": usd_and_brl(client, unit_amount=3000).id}],
            "currency": "brl",
        }
    )
    cheaper = usd_and_brl(client, unit_amount=500)
    schedule = client.v1.subscription_schedules.create(
        params={"from_subscription": subscription.id}
    )
    [current] = schedule.phases
    client.v1.subscription_schedules.update(
        schedule.id,
        params={
            "phases": [
                {
                    "items": [{"price": current["items"][0].price, "quantity": 1}],
                    "start_date": current.start_date,
                    "end_date": current.end_date,
                },
                {"items": [{"price": cheaper.id, "quantity": 1}]},
            ]
        },
    )

    emulator_only(client, f"subscriptions/{subscription.id}/end_period")

    renewed = client.v1.subscriptions.retrieve(subscription.id)
    assert (renewed.currency, renewed["items"].data[0].price.id) == ("brl", cheaper.id)
    assert isinstance(renewed.latest_invoice, str)
    invoice = client.v1.invoices.retrieve(renewed.latest_invoice)
    assert (invoice.currency, invoice.total) == ("brl", BRL_AMOUNT)
    phases = client.v1.subscription_schedules.retrieve(schedule.id).phases
    assert [phase.currency for phase in phases] == ["brl", "brl"]
