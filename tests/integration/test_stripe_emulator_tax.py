"""The emulator's Stripe Tax, as Stripe has it at the pinned API version (every request and
answer checked against stripe-python's types by the conformance check): customers located by
their address, `automatic_tax` on subscriptions, their invoices and previews, Checkout Sessions
that collect the address, and the Tax Calculations API that taxes a PaymentIntent."""

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

BERLIN = {"country": "DE", "postal_code": "10115", "city": "Berlin", "line1": "Unter den Linden 1"}


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def _located(client: stripe.StripeClient, address: Any = BERLIN) -> str:
    customer_id, _ = customer_with_card(client)
    if address is not None:
        params: Any = {"address": address}
        client.v1.customers.update(customer_id, params=params)
    return customer_id


def _refusal(call: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        call()
    return refused.value


@pytest.mark.parametrize(
    ("address", "status", "country"),
    [
        (BERLIN, "supported", "DE"),
        ({"country": "BR", "postal_code": "01310-100"}, "not_collecting", "BR"),
        ({"country": "US", "line1": "1 Main St"}, "unrecognized_location", None),  # no ZIP
        (None, "unrecognized_location", None),
    ],
)
def test_a_customer_is_located_by_its_billing_address(
    client: stripe.StripeClient, address: dict[str, str] | None, status: str, country: str | None
) -> None:
    customer = client.v1.customers.retrieve(_located(client, address), params={"expand": ["tax"]})

    assert customer.tax is not None
    assert customer.tax.automatic_tax == status
    assert (customer.tax.location.country if customer.tax.location else None) == country


def test_an_address_stripe_tax_cannot_use_is_refused_when_validated_immediately(
    client: stripe.StripeClient,
) -> None:
    customer_id = _located(client, None)

    refused = _refusal(
        lambda: client.v1.customers.update(
            customer_id,
            params={
                "address": {"country": "US", "line1": "1 Main St"},
                "tax": {"validate_location": "immediately"},
            },
        )
    )

    assert refused.code == "customer_tax_location_invalid"
    assert client.v1.customers.retrieve(customer_id).address is None
    client.v1.customers.update(
        customer_id,
        params={
            "address": {"country": "US", "postal_code": "94103"},
            "tax": {"validate_location": "immediately"},
        },
    )


def test_an_automatic_tax_subscription_bills_tax_by_the_customers_country(
    client: stripe.StripeClient,
) -> None:
    subscription = client.v1.subscriptions.create(
        params={
            "customer": _located(client),
            "items": [{"price": monthly(client, 2000).id}],
            "automatic_tax": {"enabled": True},
            "expand": ["latest_invoice.payments"],
        }
    )

    assert subscription.automatic_tax.enabled is True
    invoice = subscription.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.automatic_tax.enabled, invoice.automatic_tax.status) == (True, "complete")
    assert (invoice.subtotal, invoice.total_excluding_tax, invoice.total) == (2000, 2000, 2380)
    [tax] = invoice.total_taxes or []
    assert (tax.amount, tax.taxable_amount, tax.taxability_reason) == (380, 2000, "standard_rated")
    assert [t.amount for t in invoice.lines.data[0].taxes or []] == [380]
    assert (invoice.status, invoice.amount_paid) == ("paid", 2380)


def test_a_subscription_without_automatic_tax_bills_none(client: stripe.StripeClient) -> None:
    subscription = client.v1.subscriptions.create(
        params={
            "customer": _located(client),
            "items": [{"price": monthly(client, 2000).id}],
            "expand": ["latest_invoice"],
        }
    )

    invoice = subscription.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.automatic_tax.enabled, invoice.total, invoice.total_taxes) == (False, 2000, [])


def test_automatic_tax_for_a_customer_without_location_is_refused(
    client: stripe.StripeClient,
) -> None:
    customer_id = _located(client, None)
    price = monthly(client, 2000).id

    refused = _refusal(
        lambda: client.v1.subscriptions.create(
            params={
                "customer": customer_id,
                "items": [{"price": price}],
                "automatic_tax": {"enabled": True},
            }
        )
    )

    assert (refused.code, refused.http_status) == ("customer_tax_location_invalid", 400)
    assert client.v1.subscriptions.list(params={"customer": customer_id}).data == []


def test_a_preview_shows_tax_or_that_the_location_is_missing(
    client: stripe.StripeClient,
) -> None:
    price = monthly(client, 1000).id

    def preview(customer_id: str) -> stripe.Invoice:
        return client.v1.invoices.create_preview(
            params={
                "customer": customer_id,
                "subscription_details": {"items": [{"price": price}]},
                "automatic_tax": {"enabled": True},
            }
        )

    taxed = preview(_located(client, {"country": "FR"}))
    unlocated = preview(_located(client, None))

    assert (taxed.automatic_tax.status, taxed.total, taxed.total_excluding_tax) == (
        "complete",
        1200,
        1000,
    )
    assert (unlocated.automatic_tax.status, unlocated.total, unlocated.total_taxes) == (
        "requires_location_inputs",
        1000,
        [],
    )


def test_a_checkout_session_collects_the_address_that_taxes_its_subscription(
    client: stripe.StripeClient,
) -> None:
    customer_id = _located(client, None)
    price = monthly(client, 1000).id
    params: Any = {
        "mode": "subscription",
        "customer": customer_id,
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": "https://app.example/ok",
        "automatic_tax": {"enabled": True},
        "tax_id_collection": {"enabled": True},
    }
    refused = _refusal(lambda: client.v1.checkout.sessions.create(params=params))
    assert refused.param == "customer_update[address]"
    params["customer_update"] = {"address": "auto"}
    refused = _refusal(lambda: client.v1.checkout.sessions.create(params=params))
    assert refused.param == "customer_update[name]"

    params["customer_update"] = {"address": "auto", "name": "auto"}
    params["billing_address_collection"] = "required"
    session = client.v1.checkout.sessions.create(params=params)
    assert (session.automatic_tax.enabled, session.automatic_tax.status) == (
        True,
        "requires_location_inputs",
    )
    assert session.billing_address_collection == "required"
    assert session.tax_id_collection is not None
    assert session.tax_id_collection.enabled
    emulator_only(
        client,
        f"checkout/sessions/{session.id}/complete",
        billing_details={"address": {"country": "IE"}, "name": "Dojo Ltd"},
    )

    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription"]})
    assert (done.status, done.automatic_tax.status, done.amount_total) == (
        "complete",
        "complete",
        1230,
    )
    assert done.total_details is not None
    assert done.total_details.amount_tax == 230
    assert done.customer_details is not None
    assert done.customer_details.address is not None
    assert done.customer_details.address.country == "IE"
    subscription = done.subscription
    assert isinstance(subscription, stripe.Subscription)
    assert subscription.automatic_tax.enabled is True
    customer = client.v1.customers.retrieve(customer_id)
    assert (customer.name, customer.address and customer.address.country) == ("Dojo Ltd", "IE")


def test_a_tax_calculation_taxes_the_payment_intent_that_names_it(
    client: stripe.StripeClient,
) -> None:
    customer_id = _located(client, {"country": "NL"})
    calculation = client.v1.tax.calculations.create(
        params={
            "currency": "eur",
            "customer": customer_id,
            "line_items": [{"amount": 5000, "reference": unique("price")}],
        }
    )
    assert (calculation.tax_amount_exclusive, calculation.amount_total) == (1050, 6050)
    assert calculation.id is not None
    hooks: Any = {"inputs": {"tax": {"calculation": calculation.id}}}

    refused = _refusal(
        lambda: client.v1.payment_intents.create(
            params={"amount": 5000, "currency": "eur", "customer": customer_id, "hooks": hooks}
        )
    )
    assert refused.param == "hooks[inputs][tax][calculation]"
    intent = client.v1.payment_intents.create(
        params={"amount": 6050, "currency": "eur", "customer": customer_id, "hooks": hooks}
    )

    assert intent.hooks is not None
    assert intent.hooks.inputs is not None
    assert intent.hooks.inputs.tax is not None
    assert intent.hooks.inputs.tax.calculation == calculation.id
    assert client.v1.tax.calculations.retrieve(calculation.id).amount_total == 6050


def test_a_tax_calculation_needs_the_customers_location(client: stripe.StripeClient) -> None:
    customer_id = _located(client, None)

    refused = _refusal(
        lambda: client.v1.tax.calculations.create(
            params={
                "currency": "eur",
                "customer": customer_id,
                "line_items": [{"amount": 5000, "reference": "p"}],
            }
        )
    )

    assert refused.code == "customer_tax_location_invalid"


def test_a_finalized_invoice_keeps_its_tax_when_the_address_changes(
    client: stripe.StripeClient,
) -> None:
    customer_id = _located(client)
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"price": monthly(client, 2000).id}],
            "automatic_tax": {"enabled": True},
        }
    )
    invoice_id = str(subscription.latest_invoice)
    moved: Any = {"address": {"country": "IE"}}

    client.v1.customers.update(customer_id, params=moved)

    invoice = client.v1.invoices.retrieve(invoice_id)
    assert (invoice.total, [t.amount for t in invoice.total_taxes or []]) == (2380, [380])
