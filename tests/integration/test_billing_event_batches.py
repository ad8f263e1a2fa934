"""ApplyStripeEvents applies a batch in one transaction, each event still its own result: over
real gRPC, on real Postgres, with the Stripe emulator where an event needs Stripe."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from sqlalchemy import select, text
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.service_credentials import ServiceCredentials
from services.billing.grpc_api import GATEWAY
from services.billing.models import applied_events, invoices, prices
from services.billing.models import subscriptions as subscriptions_table
from tests import stripe_objects
from tests.harness import BillingHandle
from tests.integration.test_billing_events import (
    RELAY,
    apply,
    basic_monthly,
    billing_server,
    create_customer,
    listed_subscriptions,
    mirrored,
    new_user,
    recorded_outcome,
    request_for,
    restamped,
    stripe_event,
    stripe_only_customer,
    subscribe,
)
from tests.stripe_objects import event_envelope

Outcome = billing_pb2.ApplyStripeEventResponse
T = stripe_objects.T0


@pytest.fixture(scope="module")
async def stub(billing: BillingHandle) -> AsyncIterator[billing_pb2_grpc.BillingServiceStub]:
    async with billing_server(billing, billing.stripe) as stub:
        yield stub


@pytest.fixture
def gateway(billing: BillingHandle) -> ServiceCredentials:
    return ServiceCredentials(GATEWAY, billing.gateway_secret, audience="billing")


async def apply_batch(stub: billing_pb2_grpc.BillingServiceStub, batch: list[dict]) -> list:
    """Each event's outcome, or its error as (code, reason), in order."""
    reply = await stub.ApplyStripeEvents(
        billing_pb2.ApplyStripeEventsRequest(events=[request_for(e) for e in batch]),
        metadata=RELAY.metadata(None),
    )
    assert [r.event_id for r in reply.results] == [e["id"] for e in batch]
    return [
        (r.error.code, r.error.reason) if r.WhichOneof("result") == "error" else r.outcome
        for r in reply.results
    ]


def token() -> str:
    return secrets.token_hex(7)


def invoice_event(
    kind: str = "invoice.created", *, invoice_id: str | None = None, created: int = T, **values: Any
) -> dict[str, Any]:
    invoice = stripe_objects.invoice(invoice_id or "in_" + token(), customer="cus_" + token())
    return event_envelope(kind, {**invoice, **values}, created=created)


def price_event(kind: str, price_id: str, *, created: int, unit_amount: int) -> dict[str, Any]:
    price = stripe_objects.price(price_id, product="prod_" + token(), unit_amount=unit_amount)
    return event_envelope(kind, price, created=created)


async def xmins(billing: BillingHandle, table: Any, key: Any, ids: list[str]) -> set[str]:
    """The ids of the transactions that wrote these rows (`xmin`)."""
    async with billing.engine.connect() as conn:
        rows = await conn.execute(select(text("xmin::text")).select_from(table).where(key.in_(ids)))
        return set(rows.scalars())


async def test_a_poisoned_event_fails_alone_and_the_rest_commit_in_one_transaction(
    billing, stub
) -> None:
    first, second, last = invoice_event(), invoice_event(), invoice_event()
    # Well-formed for the row builder; the database refuses it (a currency is 3 letters), after
    # the events before it in the batch were written.
    poisoned = invoice_event(currency="usdollars")
    ignored = event_envelope(
        "checkout.session.expired", {"id": "cs_" + token(), "object": "checkout.session"}, created=T
    )
    batch = [first, second, poisoned, last, ignored]

    fates = await apply_batch(stub, batch)

    assert fates[:2] == [Outcome.OUTCOME_APPLIED] * 2
    assert fates[2] == (grpc.StatusCode.INTERNAL.value[0], "internal")
    assert fates[3:] == [Outcome.OUTCOME_APPLIED, Outcome.OUTCOME_IGNORED]
    assert await recorded_outcome(billing, poisoned["id"]) is None
    assert await mirrored(billing, invoices, poisoned["data"]["object"]["id"]) is None
    written = [e["data"]["object"]["id"] for e in (first, second, last)]
    assert len(await xmins(billing, invoices, invoices.c.id, written)) == 3  # own savepoints
    # One transaction recorded every event it applied.
    recorded = [e["id"] for e in (first, second, last, ignored)]
    assert len(await xmins(billing, applied_events, applied_events.c.event_id, recorded)) == 1

    # The relay's retry of the poisoned event alone fails the same way, and nothing else.
    assert await apply_batch(stub, [poisoned]) == [fates[2]]


async def test_a_clean_batch_writes_its_rows_in_one_transaction(billing, stub) -> None:
    batch = [invoice_event() for _ in range(5)]

    assert await apply_batch(stub, batch) == [Outcome.OUTCOME_APPLIED] * 5

    written = [e["data"]["object"]["id"] for e in batch]
    assert len(await xmins(billing, invoices, invoices.c.id, written)) == 1
    recorded = [e["id"] for e in batch]
    assert len(await xmins(billing, applied_events, applied_events.c.event_id, recorded)) == 1


async def test_a_batch_answers_duplicates_of_earlier_calls_and_of_itself(billing, stub) -> None:
    before, fresh = invoice_event(), invoice_event()
    assert await apply(stub, before) == Outcome.OUTCOME_APPLIED

    fates = await apply_batch(stub, [before, fresh, fresh, before])

    assert fates == [
        Outcome.OUTCOME_DUPLICATE,
        Outcome.OUTCOME_APPLIED,
        Outcome.OUTCOME_DUPLICATE,
        Outcome.OUTCOME_DUPLICATE,
    ]
    assert await recorded_outcome(billing, fresh["id"]) == "applied"


async def test_a_stale_event_in_a_batch_changes_nothing(billing, stub) -> None:
    invoice_id = "in_" + token()
    paid = invoice_event("invoice.paid", invoice_id=invoice_id, created=T + 10, status="paid")
    assert await apply(stub, paid) == Outcome.OUTCOME_APPLIED
    late = invoice_event("invoice.finalized", invoice_id=invoice_id, created=T + 5, status="open")

    assert await apply_batch(stub, [late, invoice_event()]) == [
        Outcome.OUTCOME_STALE,
        Outcome.OUTCOME_APPLIED,
    ]

    row = await mirrored(billing, invoices, invoice_id)
    assert row.status == "paid"
    assert row.source_event_created == datetime.fromtimestamp(T + 10, UTC)
    assert await recorded_outcome(billing, late["id"]) == "stale"


@pytest.mark.parametrize("newest_first", [False, True], ids=["in order", "newest first"])
async def test_two_events_of_one_object_in_a_batch_are_ruled_on_in_turn(
    billing, stub, newest_first
) -> None:
    # An invoice: a price's events are signals to fetch the price, applied alone.
    invoice_id = "in_" + token()
    older = invoice_event("invoice.finalized", invoice_id=invoice_id, created=T, status="open")
    newer = invoice_event("invoice.paid", invoice_id=invoice_id, created=T + 1, status="paid")
    batch = [newer, older] if newest_first else [older, newer]

    fates = await apply_batch(stub, batch)

    if newest_first:
        assert fates == [Outcome.OUTCOME_APPLIED, Outcome.OUTCOME_STALE]
    else:
        assert fates == [Outcome.OUTCOME_APPLIED, Outcome.OUTCOME_APPLIED]
    row = await mirrored(billing, invoices, invoice_id)
    assert (row.status, row.source_event_created) == ("paid", datetime.fromtimestamp(T + 1, UTC))


async def test_concurrent_batches_on_the_same_new_objects_keep_the_newest_state(
    billing, stub
) -> None:
    """Both batches write the same objects, created by neither yet, in opposite orders: each
    object ends with its newest event's state, and every event has an outcome (no deadlock)."""
    pairs = []
    for _ in range(8):
        price_id, invoice_id = "price_" + token(), "in_" + token()
        one = [
            price_event("price.updated", price_id, created=T + 1, unit_amount=1000),
            invoice_event("invoice.created", invoice_id=invoice_id, created=T + 1),
        ]
        other = [
            invoice_event("invoice.paid", invoice_id=invoice_id, created=T + 2, status="paid"),
            price_event("price.updated", price_id, created=T + 2, unit_amount=2000),
        ]
        pairs.append((price_id, invoice_id, one, other))

    answers = await asyncio.gather(
        *(apply_batch(stub, batch) for _, _, one, other in pairs for batch in (one, other))
    )

    for fates in answers:
        assert set(fates) <= {Outcome.OUTCOME_APPLIED, Outcome.OUTCOME_STALE}
    for price_id, invoice_id, _, _ in pairs:
        assert (await mirrored(billing, prices, price_id)).unit_amount == 2000
        assert (await mirrored(billing, invoices, invoice_id)).status == "paid"


async def test_a_completed_checkout_in_a_batch_mirrors_its_subscription(
    billing, stub, gateway
) -> None:
    user = new_user()
    customer_id = await create_customer(stub, gateway, user)
    subscription = await subscribe(billing, customer_id)
    session = {
        "id": "cs_test_" + token(),
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "customer": customer_id,
        "subscription": subscription.id,
        "created": subscription.created,
    }
    checkout = event_envelope("checkout.session.completed", session, created=subscription.created)
    others = [invoice_event(), invoice_event()]

    fates = await apply_batch(stub, [others[0], checkout, others[1]])

    assert fates == [Outcome.OUTCOME_APPLIED] * 3
    [listed] = await listed_subscriptions(stub, gateway, user)
    assert (listed.id, listed.status) == (subscription.id, "active")
    # Fetched from Stripe after the batch, in a transaction of its own.
    batched = await xmins(
        billing, applied_events, applied_events.c.event_id, [e["id"] for e in others]
    )
    alone = await xmins(billing, applied_events, applied_events.c.event_id, [checkout["id"]])
    assert len(batched) == 1
    assert alone.isdisjoint(batched)


async def test_an_event_settled_by_a_fetch_in_a_batch_writes_what_stripe_says(
    billing, stub
) -> None:
    subscription = await subscribe(billing, await stripe_only_customer(billing))
    creation = await stripe_event(billing, "customer.subscription.created", subscription.id)
    assert await apply(stub, creation) == Outcome.OUTCOME_APPLIED
    await billing.stripe.v1.subscriptions.update_async(
        subscription.id, params={"cancel_at_period_end": True}
    )
    # The creation's object again, in its second: the order is unknown, so Stripe settles it.
    same_second = restamped(creation, created=creation["created"])

    fates = await apply_batch(stub, [invoice_event(), same_second])

    assert fates == [Outcome.OUTCOME_APPLIED, Outcome.OUTCOME_APPLIED]
    row = await mirrored(billing, subscriptions_table, subscription.id)
    assert row.cancel_at_period_end is True
    assert row.refetched is True
    assert await recorded_outcome(billing, same_second["id"]) == "applied"


async def test_a_failed_invoice_payment_in_a_batch_records_why_from_stripe(
    billing, stub, gateway
) -> None:
    user = new_user()
    customer_id = await create_customer(stub, gateway, user)
    card = await billing.stripe.v1.payment_methods.attach_async(
        "pm_card_chargeCustomerFail", params={"customer": customer_id}
    )
    await billing.stripe.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    subscription = await billing.stripe.v1.subscriptions.create_async(
        params={"customer": customer_id, "items": [{"price": await basic_monthly(billing)}]}
    )
    listed = await billing.stripe.v1.invoices.list_async(params={"subscription": subscription.id})
    [invoice] = listed.data
    failed = await stripe_event(billing, "invoice.payment_failed", invoice.id)
    others = [invoice_event(), invoice_event()]

    fates = await apply_batch(stub, [others[0], failed, others[1]])

    assert fates == [Outcome.OUTCOME_APPLIED] * 3
    row = await mirrored(billing, invoices, invoice.id)
    assert (row.status, row.payment_status) == ("open", "requires_payment_method")
    assert (row.payment_error_code, row.payment_decline_code) == (
        "card_declined",
        "generic_decline",
    )
    reply = await stub.ListInvoices(
        billing_pb2.ListInvoicesRequest(), metadata=gateway.metadata(user)
    )
    [shown] = reply.invoices
    assert (shown.last_payment.status, shown.last_payment.reason) == (
        "requires_payment_method",
        "card_declined",
    )
    # The fetch from Stripe ran after the batch, in a transaction of its own.
    batched = await xmins(
        billing, applied_events, applied_events.c.event_id, [e["id"] for e in others]
    )
    alone = await xmins(billing, applied_events, applied_events.c.event_id, [failed["id"]])
    assert alone.isdisjoint(batched)


async def test_a_failed_invoice_payment_older_than_the_mirror_still_records_why(
    billing, stub, gateway
) -> None:
    user = new_user()
    customer_id = await create_customer(stub, gateway, user)
    card = await billing.stripe.v1.payment_methods.attach_async(
        "pm_card_chargeCustomerFail", params={"customer": customer_id}
    )
    await billing.stripe.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    subscription = await billing.stripe.v1.subscriptions.create_async(
        params={"customer": customer_id, "items": [{"price": await basic_monthly(billing)}]}
    )
    [invoice] = (
        await billing.stripe.v1.invoices.list_async(params={"subscription": subscription.id})
    ).data
    failed = await stripe_event(billing, "invoice.payment_failed", invoice.id)
    # A later state of the invoice (an `invoice.updated` of a later second) reached the mirror
    # first; the failure, delivered after it (out of order, or retried), is older.
    later = restamped(failed, created=failed["created"] + 60, event_type="invoice.updated")
    assert await apply(stub, later) == Outcome.OUTCOME_APPLIED

    assert await apply(stub, failed) == Outcome.OUTCOME_STALE

    row = await mirrored(billing, invoices, invoice.id)
    assert (row.payment_status, row.payment_decline_code) == (
        "requires_payment_method",
        "generic_decline",
    )
