"""The emulator answers as Stripe does at the pinned API version (`2026-10-28.endive`): object
shapes, events, trials and flexible-mode prorations. Checked on the JSON as sent."""

import pytest
import stripe

from tests.integration.stripe_emulator_helpers import (
    customer_with_card,
    emulator_only,
    events_about,
    monthly,
    raw,
    sdk_client,
    unique,
)
from tests.integration.stripe_fields import id_of, present

LEGACY_SUBSCRIPTION_FIELDS = (
    "plan",
    "quantity",
    "current_period_start",
    "current_period_end",
    "tax_percent",
    "discount",
    "trial_period_days",
    "trial_from_plan",
)
LEGACY_INVOICE_FIELDS = ("subscription", "payment_intent", "charge", "date", "tax", "discount")


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def test_a_subscription_has_no_field_the_pinned_version_dropped(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)
    created = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 1000).id}]}
    )

    subscription = raw(client, "get", f"/v1/subscriptions/{created.id}")

    assert not set(LEGACY_SUBSCRIPTION_FIELDS) & set(subscription)
    [item] = subscription["items"]["data"]
    assert item["current_period_end"] > item["current_period_start"] == subscription["start_date"]
    assert item["price"]["id"] == item["plan"]["id"]
    assert "total_count" not in subscription["items"]
    assert subscription["billing_cycle_anchor"] == subscription["start_date"]
    assert subscription["discounts"] == []
    assert subscription["default_tax_rates"] == []


def test_subscriptions_bill_in_flexible_mode_by_default(client: stripe.StripeClient) -> None:
    customer_id, _ = customer_with_card(client)
    created = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 1000).id}]}
    )

    subscription = raw(client, "get", f"/v1/subscriptions/{created.id}")

    assert subscription["billing_mode"] == {
        "type": "flexible",
        "flexible": {"proration_discounts": "included"},
        "updated_at": subscription["created"],
    }


def test_classic_billing_mode_is_refused_with_the_param_named(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.create(
            params={
                "customer": customer_id,
                "items": [{"price": monthly(client, 1000).id}],
                "billing_mode": {"type": "classic"},
            }
        )

    assert refused.value.param == "billing_mode[type]"


def test_an_invoice_names_its_subscription_in_parent_and_its_intent_in_payments(
    client: stripe.StripeClient,
) -> None:
    customer = client.v1.customers.create(params={"email": f"{unique('inv')}@example.com"})
    created = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": monthly(client, 1900).id}],
            "payment_behavior": "default_incomplete",
            "metadata": {"tatame_principal": "user:1"},
        }
    )
    path = f"/v1/invoices/{created.latest_invoice}"

    invoice = raw(client, "get", path)
    with_payments = raw(client, "get", path, expand=["payments", "confirmation_secret"])

    assert not set(LEGACY_INVOICE_FIELDS) & set(invoice)
    assert "confirmation_secret" not in invoice
    assert "payments" not in invoice
    assert invoice["parent"]["subscription_details"] == {
        "metadata": {"tatame_principal": "user:1"},
        "subscription": created.id,
        "subscription_proration_date": None,
    }
    assert invoice["billing_reason"] == "subscription_create"
    [payment] = with_payments["payments"]["data"]
    intent_id = payment["payment"]["payment_intent"]
    assert (payment["status"], payment["amount_requested"]) == ("open", 1900)
    assert with_payments["confirmation_secret"]["client_secret"].startswith(intent_id + "_secret_")
    [line] = invoice["lines"]["data"]
    assert line["parent"]["subscription_item_details"]["subscription"] == created.id
    assert line["pricing"]["price_details"]["price"] == created["items"].data[0].price.id


def test_an_expansion_of_a_field_that_is_no_object_is_a_400(client: stripe.StripeClient) -> None:
    customer_id, _ = customer_with_card(client)
    created = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 1000).id}]}
    )

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.retrieve(created.id, params={"expand": ["plan"]})

    assert refused.value.http_status == 400


def test_a_trial_starts_trialing_with_a_paid_zero_invoice(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": f"{unique('trial')}@example.com"})
    created = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": monthly(client, 1900).id}],
            "trial_period_days": 14,
        }
    )

    invoice = raw(client, "get", f"/v1/invoices/{created.latest_invoice}")
    subscription_events = [e["type"] for e in events_about(client, created.id)]
    created_event = events_about(client, created.id)[0]

    assert created.status == "trialing"
    assert present(created.trial_end) - present(created.trial_start) == 14 * 86400
    assert (invoice["status"], invoice["total"], invoice["amount_paid"]) == ("paid", 0, 0)
    assert invoice["billing_reason"] == "subscription_create"
    [line] = invoice["lines"]["data"]
    assert line["amount"] == 0
    assert line["description"].startswith("Trial period for ")
    assert line["period"] == {"start": created.trial_start, "end": created.trial_end}
    announced = events_about(client, invoice["id"])
    invoice_events = [e["type"] for e in announced]
    assert invoice_events[0] == "invoice.created"
    assert "invoice.paid" in invoice_events
    # Never announced at the price's amount: the trial's invoice is at no charge from its start.
    assert {
        (e["data"]["object"]["total"], e["data"]["object"]["amount_due"]) for e in announced
    } == {(0, 0)}
    assert subscription_events == ["customer.subscription.created"]
    assert created_event["data"]["object"]["status"] == "trialing"


def test_events_carry_the_pinned_version_and_what_a_change_changed(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)
    created = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 1000).id}]}
    )
    client.v1.subscriptions.update(created.id, params={"cancel_at_period_end": True})

    created_event, updated_event = events_about(client, created.id)

    assert {created_event["api_version"], updated_event["api_version"]} == {stripe.api_version}
    assert "previous_attributes" not in created_event["data"]
    assert updated_event["data"]["object"]["cancel_at_period_end"] is True
    previous = updated_event["data"]["previous_attributes"]
    assert (previous["cancel_at_period_end"], previous["cancel_at"]) == (False, None)
    assert "customer" not in previous


def test_a_credit_proration_is_for_what_was_debited_not_the_price_now(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)
    basic, pro, premium = monthly(client, 1000), monthly(client, 3000), monthly(client, 5000)
    created = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": basic.id}]}
    )
    item_id = created["items"].data[0].id
    client.v1.subscriptions.update(  # not debited: the period stays paid at the basic price
        created.id,
        params={"items": [{"id": item_id, "price": pro.id}], "proration_behavior": "none"},
    )

    preview = client.v1.invoices.create_preview(
        params={
            "customer": customer_id,
            "subscription": created.id,
            "subscription_details": {
                "items": [{"id": item_id, "price": premium.id}],
                "proration_behavior": "always_invoice",
            },
        }
    )

    credit, charge = sorted(line.amount for line in preview.lines.data)
    assert -1000 <= credit < -990
    assert 4950 < charge <= 5000


def test_ending_a_trial_bills_the_first_period_as_a_cycle(client: stripe.StripeClient) -> None:
    customer_id, _ = customer_with_card(client)
    created = client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"price": monthly(client, 1900).id}],
            "trial_period_days": 7,
        }
    )

    ended = emulator_only(client, f"subscriptions/{created.id}/end_period")

    invoice = raw(client, "get", f"/v1/invoices/{ended['latest_invoice']}")
    assert ended["status"] == "active"
    assert (invoice["billing_reason"], invoice["amount_paid"]) == ("subscription_cycle", 1900)


def test_lists_are_stripe_lists(client: stripe.StripeClient) -> None:
    customer_id, _ = customer_with_card(client)
    client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 1000).id}]}
    )

    page = raw(client, "get", "/v1/invoices", customer=customer_id)

    assert set(page) == {"object", "data", "has_more", "url"}
    assert page["object"] == "list"
    assert len(page["data"]) == 1


def test_an_invoices_payments_are_listed_and_retrieved_as_invoice_payments(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)
    created = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 1500).id}]}
    )

    [listed] = client.v1.invoice_payments.list(
        params={"invoice": id_of(created.latest_invoice)}
    ).data
    retrieved = client.v1.invoice_payments.retrieve(listed.id)

    assert retrieved.to_dict() == listed.to_dict()
    assert (listed.status, listed.amount_paid, listed.invoice) == (
        "paid",
        1500,
        created.latest_invoice,
    )
    assert listed.payment.type == "payment_intent"
    assert id_of(listed.payment.payment_intent).startswith("pi_")


def test_subscriptions_invoices_and_events_are_listed_newest_first(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)
    price = monthly(client, 1000)
    first, second = (
        client.v1.subscriptions.create(params={"customer": customer_id, "items": [{"price": p}]})
        for p in (price.id, price.id)
    )

    subscriptions = client.v1.subscriptions.list(params={"customer": customer_id}).data
    invoices = client.v1.invoices.list(params={"customer": customer_id}).data
    newest_events = client.v1.events.list(params={"limit": 3}).data

    assert [s.id for s in subscriptions] == [second.id, first.id]
    assert [i.id for i in invoices] == [second.latest_invoice, first.latest_invoice]
    assert [e.created for e in newest_events] == sorted(
        (e.created for e in newest_events), reverse=True
    )


def test_a_subscription_update_merges_metadata_as_stripe_does(client: stripe.StripeClient) -> None:
    customer_id, _ = customer_with_card(client)
    created = client.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"price": monthly(client, 1000).id}],
            "metadata": {"gym": "north", "coach": "ana"},
        }
    )

    updated = client.v1.subscriptions.update(
        created.id, params={"metadata": {"coach": "", "belt": "blue"}}
    )

    assert updated.metadata.to_dict() == {"gym": "north", "belt": "blue"}
