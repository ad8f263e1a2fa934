"""Paused collection (`pause_collection`) in the emulator, driven by the real `stripe` SDK with
test clocks as a test against Stripe's test mode would: the subscription keeps its status, its
invoices meanwhile are voided, kept as drafts or marked uncollectible as the behavior says, and
a pause with `resumes_at` ends when the clock passes it (checked against stripe-python's types by
the session's conformance check)."""

import pytest
import stripe

from tests.integration.stripe_emulator_helpers import events_of, monthly, raw, sdk_client
from tests.integration.test_stripe_emulator_clocks import (
    DAY,
    advanced,
    customer_on,
    invoices_of,
    new_clock,
    period_end,
)


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def paying(client: stripe.StripeClient) -> tuple[str, stripe.Subscription]:
    """A clock, and an active monthly subscription of a customer on it with a card."""
    clock = new_clock(client)
    customer_id = customer_on(client, clock.id)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 2900).id}]}
    )
    assert subscription.status == "active"
    return clock.id, subscription


@pytest.mark.parametrize(
    ("behavior", "renewal_status", "renewal_events"),
    [
        ("void", "void", ["invoice.created", "invoice.finalized", "invoice.voided"]),
        ("keep_as_draft", "draft", ["invoice.created"]),
        (
            "mark_uncollectible",
            "uncollectible",
            ["invoice.created", "invoice.finalized", "invoice.marked_uncollectible"],
        ),
    ],
)
def test_a_renewal_while_paused_is_held_as_the_behavior_says_and_nothing_is_charged(
    client: stripe.StripeClient, behavior: str, renewal_status: str, renewal_events: list[str]
) -> None:
    clock_id, subscription = paying(client)

    paused = client.v1.subscriptions.update(
        subscription.id, params={"pause_collection": {"behavior": behavior}}
    )
    assert paused.pause_collection is not None
    assert (paused.pause_collection.behavior, paused.pause_collection.resumes_at) == (
        behavior,
        None,
    )
    assert paused.status == "active"  # a paused collection keeps the status
    advanced(client, clock_id, period_end(subscription) + 3600)

    after = client.v1.subscriptions.retrieve(subscription.id)
    assert after.status == "active"
    assert period_end(after) > period_end(subscription)  # the period moved on, unpaid
    renewal = invoices_of(client, subscription.id)[-1]
    assert renewal.id == after.latest_invoice
    assert (renewal.status, renewal.amount_paid, renewal.total) == (renewal_status, 0, 2900)
    assert renewal.auto_advance is False  # a held draft does not advance either
    assert events_of(client, renewal.id) == renewal_events


def test_collection_resumes_when_the_clock_passes_resumes_at_and_the_next_renewal_is_charged(
    client: stripe.StripeClient,
) -> None:
    clock_id, subscription = paying(client)
    first_end = period_end(subscription)
    resumes_at = first_end + 5 * DAY
    client.v1.subscriptions.update(
        subscription.id,
        params={"pause_collection": {"behavior": "void", "resumes_at": resumes_at}},
    )
    sent = raw(client, "get", f"/v1/subscriptions/{subscription.id}")
    assert sent["pause_collection"] == {"behavior": "void", "resumes_at": resumes_at}

    advanced(client, clock_id, resumes_at + 60)

    resumed = client.v1.subscriptions.retrieve(subscription.id)
    assert resumed.pause_collection is None
    assert invoices_of(client, subscription.id)[-1].status == "void"  # the renewal in the pause
    updates = [
        event
        for event in reversed(client.v1.events.list(params={"limit": 100}).data)
        if event.type == "customer.subscription.updated"
        and event.data.object["id"] == subscription.id
    ]
    last = updates[-1].data
    assert last.object["pause_collection"] is None
    assert last["previous_attributes"]["pause_collection"]["resumes_at"] == resumes_at

    advanced(client, clock_id, period_end(resumed) + 3600)

    renewal = invoices_of(client, subscription.id)[-1]
    assert (renewal.status, renewal.amount_paid) == ("paid", 2900)


def test_unpausing_clears_the_pause_and_the_next_renewal_is_charged(
    client: stripe.StripeClient,
) -> None:
    clock_id, subscription = paying(client)
    client.v1.subscriptions.update(
        subscription.id, params={"pause_collection": {"behavior": "keep_as_draft"}}
    )

    unpaused = client.v1.subscriptions.update(subscription.id, params={"pause_collection": ""})

    assert unpaused.pause_collection is None
    assert events_of(client, subscription.id)[-2:] == [
        "customer.subscription.updated",
        "customer.subscription.updated",
    ]
    advanced(client, clock_id, period_end(subscription) + 3600)
    assert invoices_of(client, subscription.id)[-1].status == "paid"


def test_unpausing_with_billing_cycle_anchor_now_charges_a_new_period_from_the_clocks_now(
    client: stripe.StripeClient,
) -> None:
    clock_id, subscription = paying(client)
    client.v1.subscriptions.update(
        subscription.id, params={"pause_collection": {"behavior": "void"}}
    )
    clock = advanced(client, clock_id, period_end(subscription) + 3600)
    voided = invoices_of(client, subscription.id)[-1]
    assert (voided.status, voided.billing_reason) == ("void", "subscription_cycle")

    restarted = client.v1.subscriptions.update(
        subscription.id,
        params={
            "pause_collection": "",
            "billing_cycle_anchor": {"type": "now"},
            "proration_behavior": "none",
        },
    )

    assert restarted.pause_collection is None
    start = restarted["items"].data[0].current_period_start
    assert start == restarted.billing_cycle_anchor == clock.frozen_time  # now, by the clock
    assert isinstance(restarted.latest_invoice, str)
    invoice = client.v1.invoices.retrieve(restarted.latest_invoice)
    assert invoice.id != voided.id
    assert (invoice.status, invoice.billing_reason, invoice.amount_paid) == (
        "paid",
        "subscription_update",
        2900,
    )
