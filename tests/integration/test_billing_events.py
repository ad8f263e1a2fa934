"""Stripe events applied to billing's mirror over real gRPC, as the webhooks relay delivers them:
a real server on a loopback port, real Postgres, and events recorded by the Stripe emulator."""

import asyncio
import json
import secrets
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
import stripe
from sqlalchemy import select
from stripe.params import PaymentMethodCreateParamsCard
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc
from tatame_devstack.ports import free_port

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.billing.customers import idempotency_key
from services.billing.grpc_api import GATEWAY, WEBHOOKS_RELAY, start_billing_server
from services.billing.models import applied_events, customers, invoices, payment_methods
from services.billing.models import subscriptions as subscriptions_table
from services.common.stripe_sdk import create_stripe_client
from tests import stripe_objects
from tests.harness import BillingHandle
from tests.integration.stripe_fields import id_of
from tests.stripe_objects import event_envelope
from tests.stripe_target import EMULATOR_KEY

Outcome = billing_pb2.ApplyStripeEventResponse
CARD: PaymentMethodCreateParamsCard = {
    "number": "4242424242424242",
    "exp_month": 12,
    "exp_year": 2030,
    "cvc": "123",
}
RELAY_SECRET = secrets.token_urlsafe(32)
RELAY = ServiceCredentials(WEBHOOKS_RELAY, RELAY_SECRET, audience="billing")


@asynccontextmanager
async def billing_server(
    billing: BillingHandle, stripe_client: stripe.StripeClient
) -> AsyncIterator[billing_pb2_grpc.BillingServiceStub]:
    """Billing on the session's database, also knowing the relay's secret (conftest's server
    knows the gateway's only)."""
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=billing.engine,
        stripe_client=stripe_client,
        service_secrets={**billing.service_secrets, WEBHOOKS_RELAY: RELAY_SECRET},
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield billing_pb2_grpc.BillingServiceStub(channel)
    finally:
        await server.stop(0)


@pytest.fixture(scope="module")
async def stub(billing: BillingHandle) -> AsyncIterator[billing_pb2_grpc.BillingServiceStub]:
    async with billing_server(billing, billing.stripe) as stub:
        yield stub


@pytest.fixture
def gateway(billing: BillingHandle) -> ServiceCredentials:
    return ServiceCredentials(GATEWAY, billing.gateway_secret, audience="billing")


# --- Events ------------------------------------------------------------------------------------


async def stripe_event(billing: BillingHandle, event_type: str, object_id: str) -> dict[str, Any]:
    """The latest `event_type` event about `object_id` that the emulator recorded, as its JSON
    (Stripe lists events newest first)."""
    found, params = [], {"type": event_type, "limit": 100}
    while True:
        response = await billing.stripe.raw_request_async("get", "/v1/events", **params)
        page = json.loads(response.body)
        found += [e for e in page["data"] if e["data"]["object"].get("id") == object_id]
        if not page["has_more"]:
            break
        params["starting_after"] = page["data"][-1]["id"]
    assert found, f"the emulator recorded no {event_type} for {object_id}"
    return found[0]


async def stripe_json(billing: BillingHandle, path: str) -> dict[str, Any]:
    """A Stripe object as the API renders it, for events the emulator does not send."""
    return json.loads((await billing.stripe.raw_request_async("get", path)).body)


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def restamped(event: dict[str, Any], *, created: int, event_type: str | None = None) -> dict:
    """Another event with `event`'s object, stamped `created`: the emulator stamps a test's
    changes within one second, where the orders under test need them seconds apart."""
    return {**event, "id": new_event_id(), "created": created, "type": event_type or event["type"]}


def request_for(event: dict[str, Any]) -> billing_pb2.ApplyStripeEventRequest:
    return billing_pb2.ApplyStripeEventRequest(
        event_id=event["id"], type=event["type"], payload=json.dumps(event).encode()
    )


async def apply(stub: billing_pb2_grpc.BillingServiceStub, event: dict[str, Any]) -> int:
    reply = await stub.ApplyStripeEvent(request_for(event), metadata=RELAY.metadata(None))
    return reply.outcome


async def recorded_outcome(billing: BillingHandle, event_id: str) -> str | None:
    async with billing.engine.connect() as conn:
        return (
            await conn.execute(
                select(applied_events.c.outcome).where(applied_events.c.event_id == event_id)
            )
        ).scalar_one_or_none()


async def mirrored(billing: BillingHandle, table: Any, object_id: str) -> Any:
    async with billing.engine.connect() as conn:
        return (await conn.execute(select(table).where(table.c.id == object_id))).one_or_none()


# --- Stripe state ------------------------------------------------------------------------------


def new_user() -> Principal:
    return Principal("user", "user_" + secrets.token_hex(6))


async def create_customer(stub, gateway: ServiceCredentials, user: Principal) -> str:
    """The Stripe customer id of `user`, created through billing."""
    reply = await stub.CreateCustomer(
        billing_pb2.CreateCustomerRequest(email=f"{user.id}@example.com", name="Ana"),
        metadata=gateway.metadata(user),
    )
    return reply.customer.stripe_customer_id


async def stripe_only_customer(billing: BillingHandle) -> str:
    """A Stripe customer that billing never made (no row in its customers table)."""
    customer = await billing.stripe.v1.customers.create_async(
        params={"email": f"{secrets.token_hex(6)}@example.com"}
    )
    return customer.id


async def basic_monthly(billing: BillingHandle) -> str:
    listed = await billing.stripe.v1.prices.list_async(params={"lookup_keys": ["basic_monthly"]})
    return listed.data[0].id


async def subscribe(billing: BillingHandle, customer_id: str) -> stripe.Subscription:
    """A paid Basic monthly subscription, made in Stripe for `customer_id` with a card."""
    card = await billing.stripe.v1.payment_methods.create_async(
        params={"type": "card", "card": CARD}
    )
    await billing.stripe.v1.payment_methods.attach_async(card.id, params={"customer": customer_id})
    await billing.stripe.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    return await billing.stripe.v1.subscriptions.create_async(
        params={"customer": customer_id, "items": [{"price": await basic_monthly(billing)}]}
    )


async def listed_subscriptions(stub, gateway: ServiceCredentials, user: Principal) -> list:
    reply = await stub.ListSubscriptions(
        billing_pb2.ListSubscriptionsRequest(), metadata=gateway.metadata(user)
    )
    return list(reply.subscriptions)


async def listed_product_ids(stub, gateway: ServiceCredentials) -> set[str]:
    reply = await stub.ListPlans(billing_pb2.ListPlansRequest(), metadata=gateway.metadata(None))
    return {plan.product_id for plan in reply.plans}


# --- Who may call ------------------------------------------------------------------------------


async def test_the_gateway_may_not_apply_stripe_events(billing, stub, gateway) -> None:
    event = event_envelope("customer.updated", {"id": "cus_x", "object": "customer"}, created=1)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ApplyStripeEvent(request_for(event), metadata=gateway.metadata(None))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ApplyStripeEvents(
            billing_pb2.ApplyStripeEventsRequest(events=[request_for(event)]),
            metadata=gateway.metadata(None),
        )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert await recorded_outcome(billing, event["id"]) is None


async def test_the_webhooks_relay_may_not_list_subscriptions(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListSubscriptions(
            billing_pb2.ListSubscriptionsRequest(), metadata=RELAY.metadata(new_user())
        )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_list_subscriptions_requires_a_principal(stub, gateway) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListSubscriptions(
            billing_pb2.ListSubscriptionsRequest(), metadata=gateway.metadata(None)
        )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


# --- Subscriptions -----------------------------------------------------------------------------


async def test_a_subscription_is_listed_for_its_principal_once_its_event_is_applied(
    billing, stub, gateway
) -> None:
    user = new_user()
    customer_id = await create_customer(stub, gateway, user)
    subscription = await subscribe(billing, customer_id)
    assert await listed_subscriptions(stub, gateway, user) == []

    event = await stripe_event(billing, "customer.subscription.created", subscription.id)
    assert await apply(stub, event) == Outcome.OUTCOME_APPLIED

    [listed] = await listed_subscriptions(stub, gateway, user)
    assert listed.id == subscription.id
    assert listed.stripe_customer_id == customer_id
    assert listed.status == "active"
    assert listed.price_id == await basic_monthly(billing)
    assert listed.quantity == 1
    assert listed.cancel_at_period_end is False
    period = event["data"]["object"]["items"]["data"][0]
    assert listed.current_period_start.seconds == period["current_period_start"]
    assert listed.current_period_end.seconds == period["current_period_end"]
    assert listed.create_time.seconds == event["data"]["object"]["created"]
    for unset in ("trial_start", "trial_end", "cancel_at", "canceled_at", "ended_at"):
        assert not listed.HasField(unset), unset
    # Another principal does not see it.
    assert await listed_subscriptions(stub, gateway, new_user()) == []


async def test_one_event_delivered_ten_times_at_once_is_applied_once(billing, stub) -> None:
    subscription = await subscribe(billing, await stripe_only_customer(billing))
    event = await stripe_event(billing, "customer.subscription.created", subscription.id)

    outcomes = await asyncio.gather(*(apply(stub, event) for _ in range(10)))

    assert Counter(outcomes) == {Outcome.OUTCOME_APPLIED: 1, Outcome.OUTCOME_DUPLICATE: 9}
    async with billing.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(applied_events).where(applied_events.c.event_id == event["id"])
            )
        ).all()
    assert [row.outcome for row in rows] == ["applied"]


async def test_an_older_subscription_event_arriving_late_is_stale_and_changes_nothing(
    billing, stub, gateway
) -> None:
    user = new_user()
    subscription = await subscribe(billing, await create_customer(stub, gateway, user))
    creation = await stripe_event(billing, "customer.subscription.created", subscription.id)
    await billing.stripe.v1.subscriptions.update_async(
        subscription.id, params={"cancel_at_period_end": True}
    )
    newer = await stripe_event(billing, "customer.subscription.updated", subscription.id)
    # The state before the change, as an update event from the second before it.
    older = restamped(
        creation, created=newer["created"] - 1, event_type="customer.subscription.updated"
    )

    assert await apply(stub, newer) == Outcome.OUTCOME_APPLIED
    assert await apply(stub, older) == Outcome.OUTCOME_STALE

    [listed] = await listed_subscriptions(stub, gateway, user)
    assert listed.cancel_at_period_end is True
    assert await recorded_outcome(billing, older["id"]) == "stale"


async def applied_then_changed_in_stripe(billing, stub, gateway) -> tuple[Principal, dict, dict]:
    """A subscription whose update (cancel at period end) is applied, then undone in Stripe:
    the principal, the applied update event, and the undoing one (not applied)."""
    user = new_user()
    subscription = await subscribe(billing, await create_customer(stub, gateway, user))
    await billing.stripe.v1.subscriptions.update_async(
        subscription.id, params={"cancel_at_period_end": True}
    )
    applied = await stripe_event(billing, "customer.subscription.updated", subscription.id)
    assert await apply(stub, applied) == Outcome.OUTCOME_APPLIED
    await billing.stripe.v1.subscriptions.update_async(
        subscription.id, params={"cancel_at_period_end": False}
    )
    undoing = await stripe_event(billing, "customer.subscription.updated", subscription.id)
    assert undoing["data"]["object"]["cancel_at_period_end"] is False
    return user, applied, undoing


async def test_an_event_of_the_same_second_as_the_stored_state_is_settled_by_stripe(
    billing, stub, gateway
) -> None:
    user, applied, _ = await applied_then_changed_in_stripe(billing, stub, gateway)
    # Same second, order unknown: neither this event's object nor the stored state can be trusted.
    same_second = restamped(applied, created=applied["created"])

    assert await apply(stub, same_second) == Outcome.OUTCOME_APPLIED

    [listed] = await listed_subscriptions(stub, gateway, user)
    assert listed.cancel_at_period_end is False  # what Stripe says now


async def test_after_a_fetch_later_events_fetch_again_until_one_matches_stripe(
    billing, stub, gateway
) -> None:
    user, applied, undoing = await applied_then_changed_in_stripe(billing, stub, gateway)
    second = applied["created"]
    await apply(stub, restamped(applied, created=second))  # fetches: not cancelling
    # Later than the stored state, yet older than what was fetched: must not roll it back.
    assert await apply(stub, restamped(applied, created=second + 1)) == Outcome.OUTCOME_APPLIED
    [listed] = await listed_subscriptions(stub, gateway, user)
    assert listed.cancel_at_period_end is False
    row = await mirrored(billing, subscriptions_table, listed.id)
    assert row.refetched is True

    # The latest change's own event matches Stripe: the row holds an event's state again.
    assert await apply(stub, restamped(undoing, created=second + 2)) == Outcome.OUTCOME_APPLIED
    row = await mirrored(billing, subscriptions_table, listed.id)
    assert row.refetched is False
    assert row.source_event_created == datetime.fromtimestamp(second + 2, UTC)
    assert row.cancel_at_period_end is False


async def test_a_subscription_of_an_unknown_customer_is_kept_and_listed_once_linked(
    billing, stub, gateway
) -> None:
    user = new_user()
    email = f"{user.id}@example.com"
    # CreateCustomer reached Stripe, then billing stopped before storing the customer.
    customer = await billing.stripe.v1.customers.create_async(
        params={"email": email, "name": "Ana", "metadata": {"tatame_principal": user.key}},
        options={"idempotency_key": idempotency_key(principal=user, email=email, name="Ana")},
    )
    subscription = await subscribe(billing, customer.id)
    event = await stripe_event(billing, "customer.subscription.created", subscription.id)
    assert await apply(stub, event) == Outcome.OUTCOME_APPLIED

    # The retried CreateCustomer links the same Stripe customer to the principal.
    reply = await stub.CreateCustomer(
        billing_pb2.CreateCustomerRequest(email=email, name="Ana"), metadata=gateway.metadata(user)
    )
    assert reply.customer.stripe_customer_id == customer.id
    assert [s.id for s in await listed_subscriptions(stub, gateway, user)] == [subscription.id]


async def test_a_completed_checkout_mirrors_the_subscription_it_created(
    billing, stub, gateway
) -> None:
    user = new_user()
    customer_id = await create_customer(stub, gateway, user)
    subscription = await subscribe(billing, customer_id)
    session = {
        "id": "cs_test_" + secrets.token_hex(12),
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "payment_status": "paid",
        "client_reference_id": user.key,
        "customer": customer_id,
        "subscription": subscription.id,
        "created": subscription.created,
    }
    event = event_envelope("checkout.session.completed", session, created=subscription.created)

    assert await apply(stub, event) == Outcome.OUTCOME_APPLIED

    [listed] = await listed_subscriptions(stub, gateway, user)
    assert (listed.id, listed.status) == (subscription.id, "active")


# --- Invoices, customers, payment methods --------------------------------------------------------


async def test_invoice_events_mirror_amounts_status_and_links_before_the_subscription_is_known(
    billing, stub
) -> None:
    customer_id = await stripe_only_customer(billing)
    subscription = await subscribe(billing, customer_id)
    invoice_id = id_of(subscription.latest_invoice)

    created = await stripe_event(billing, "invoice.created", invoice_id)
    assert await apply(stub, created) == Outcome.OUTCOME_APPLIED
    draft = await mirrored(billing, invoices, invoice_id)
    assert (draft.status, draft.hosted_invoice_url) == ("draft", None)

    paid = await stripe_event(billing, "invoice.payment_succeeded", invoice_id)
    assert await apply(stub, paid) == Outcome.OUTCOME_APPLIED
    row = await mirrored(billing, invoices, invoice_id)
    stripe_invoice = await billing.stripe.v1.invoices.retrieve_async(invoice_id)
    assert row.status == "paid"
    assert (row.amount_due, row.amount_paid, row.amount_remaining, row.total) == (
        1900,
        1900,
        0,
        1900,
    )
    assert row.currency == "usd"
    assert row.hosted_invoice_url == stripe_invoice.hosted_invoice_url is not None
    assert row.invoice_pdf == stripe_invoice.invoice_pdf
    assert row.number == stripe_invoice.number
    assert (row.stripe_customer_id, row.subscription_id) == (customer_id, subscription.id)
    assert await mirrored(billing, subscriptions_table, subscription.id) is None


async def test_customer_updated_refreshes_the_email_billing_serves(billing, stub, gateway) -> None:
    user = new_user()
    customer_id = await create_customer(stub, gateway, user)
    await billing.stripe.v1.customers.update_async(
        customer_id, params={"email": f"new.{user.id}@example.com"}
    )
    event = await stripe_event(billing, "customer.updated", customer_id)

    assert await apply(stub, event) == Outcome.OUTCOME_APPLIED

    reply = await stub.GetCustomer(
        billing_pb2.GetCustomerRequest(), metadata=gateway.metadata(user)
    )
    assert reply.customer.email == f"new.{user.id}@example.com"


async def test_customer_deleted_in_stripe_is_marked_deleted(billing, stub, gateway) -> None:
    customer_id = await create_customer(stub, gateway, new_user())
    await billing.stripe.v1.customers.delete_async(customer_id)
    event = await stripe_event(billing, "customer.deleted", customer_id)

    assert await apply(stub, event) == Outcome.OUTCOME_APPLIED

    async with billing.engine.connect() as conn:
        deleted_at = (
            await conn.execute(
                select(customers.c.deleted_at).where(customers.c.stripe_customer_id == customer_id)
            )
        ).scalar_one()
    assert deleted_at == datetime.fromtimestamp(event["created"], UTC)


async def test_events_of_customers_billing_did_not_create_are_ignored(billing, stub) -> None:
    customer_id = await stripe_only_customer(billing)
    event = await stripe_event(billing, "customer.created", customer_id)

    assert await apply(stub, event) == Outcome.OUTCOME_IGNORED
    assert await recorded_outcome(billing, event["id"]) == "ignored"


async def test_payment_method_attach_and_detach_are_mirrored(billing, stub) -> None:
    customer_id = await stripe_only_customer(billing)
    card = await billing.stripe.v1.payment_methods.create_async(
        params={"type": "card", "card": CARD}
    )
    await billing.stripe.v1.payment_methods.attach_async(card.id, params={"customer": customer_id})
    attached = await stripe_json(billing, f"/v1/payment_methods/{card.id}")
    event = event_envelope("payment_method.attached", attached, created=card.created)
    assert await apply(stub, event) == Outcome.OUTCOME_APPLIED
    row = await mirrored(billing, payment_methods, card.id)
    assert (row.attached, row.stripe_customer_id) == (True, customer_id)
    assert (row.card_brand, row.card_last4, row.card_exp_month, row.card_exp_year) == (
        "visa",
        "4242",
        12,
        2030,
    )

    await billing.stripe.v1.payment_methods.detach_async(card.id)
    detached = await stripe_json(billing, f"/v1/payment_methods/{card.id}")
    event = event_envelope("payment_method.detached", detached, created=card.created + 1)
    assert await apply(stub, event) == Outcome.OUTCOME_APPLIED
    row = await mirrored(billing, payment_methods, card.id)
    assert (row.attached, row.stripe_customer_id) == (False, None)


# --- Catalog -------------------------------------------------------------------------------------


async def new_plan(billing: BillingHandle) -> tuple[stripe.Product, stripe.Price]:
    product = await billing.stripe.v1.products.create_async(
        params={"name": "Seminar " + secrets.token_hex(3)}
    )
    price = await billing.stripe.v1.prices.create_async(
        params={
            "product": product.id,
            "unit_amount": 2500,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    return product, price


async def test_price_events_keep_list_plans_in_step_even_before_the_product_arrives(
    billing, stub, gateway
) -> None:
    product, price = await new_plan(billing)
    # The price's event first: kept, though its product is not mirrored yet.
    assert await apply(stub, await stripe_event(billing, "price.created", price.id)) == (
        Outcome.OUTCOME_APPLIED
    )
    assert product.id not in await listed_product_ids(stub, gateway)
    assert await apply(stub, await stripe_event(billing, "product.created", product.id)) == (
        Outcome.OUTCOME_APPLIED
    )
    assert product.id in await listed_product_ids(stub, gateway)

    await billing.stripe.v1.prices.update_async(price.id, params={"active": False})
    deactivated = await stripe_event(billing, "price.updated", price.id)
    assert await apply(stub, deactivated) == Outcome.OUTCOME_APPLIED

    assert product.id not in await listed_product_ids(stub, gateway)


async def test_a_deleted_product_leaves_list_plans(billing, stub, gateway) -> None:
    product, price = await new_plan(billing)
    for event_type, object_id in (("product.created", product.id), ("price.created", price.id)):
        await apply(stub, await stripe_event(billing, event_type, object_id))
    assert product.id in await listed_product_ids(stub, gateway)
    as_deleted = await stripe_json(billing, f"/v1/products/{product.id}")
    await billing.stripe.v1.products.delete_async(product.id)

    event = event_envelope("product.deleted", as_deleted, created=product.created + 1)
    assert await apply(stub, event) == Outcome.OUTCOME_APPLIED

    assert product.id not in await listed_product_ids(stub, gateway)


# --- Events billing cannot or need not apply -------------------------------------------------------


def subscription_event() -> dict[str, Any]:
    """A well-formed `customer.subscription.updated` event, for malformed variants of it."""
    subscription = stripe_objects.subscription(
        "sub_" + secrets.token_hex(7),
        customer="cus_" + secrets.token_hex(7),
        item_price=stripe_objects.price("price_" + secrets.token_hex(7)),
    )
    return event_envelope("customer.subscription.updated", subscription, created=1_790_000_000)


def with_object(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**event, "data": {"object": {**event["data"]["object"], **changes}}}


def encoded(event: dict[str, Any], event_id: str | None = None, event_type: str | None = None):
    return (event_id or event["id"], event_type or event["type"], json.dumps(event).encode())


MALFORMED: dict[str, Callable[[dict[str, Any]], tuple[str, str, bytes]]] = {
    "not JSON": lambda e: (e["id"], e["type"], b'{"id": "evt_'),
    "not an object": lambda e: (e["id"], e["type"], json.dumps([e]).encode()),
    "no data.object": lambda e: encoded({**e, "data": {}}),
    "another event's id": lambda e: encoded(e, event_id=new_event_id()),
    "another event's type": lambda e: encoded(e, event_type="customer.subscription.deleted"),
    "created is not a time": lambda e: encoded({**e, "created": "2026-11-24T00:00:00Z"}),
    "status is not a string": lambda e: encoded(with_object(e, status=7)),
    "no customer": lambda e: encoded(with_object(e, customer=None)),
    "a period end that is not a time": lambda e: encoded(
        with_object(e, items={"data": [{"current_period_end": "soon"}]})
    ),
    "an invoice event carrying a subscription": lambda e: encoded({**e, "type": "invoice.paid"}),
}


@pytest.mark.parametrize("malformed", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_event_is_invalid_argument_and_not_recorded(
    billing, stub, malformed
) -> None:
    well_formed = subscription_event()
    event_id, event_type, payload = malformed(well_formed)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ApplyStripeEvent(
            billing_pb2.ApplyStripeEventRequest(
                event_id=event_id, type=event_type, payload=payload
            ),
            metadata=RELAY.metadata(None),
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert await recorded_outcome(billing, event_id) is None
    assert await mirrored(billing, subscriptions_table, well_formed["data"]["object"]["id"]) is None
    # Only the malformation was wrong.
    assert await apply(stub, well_formed) == Outcome.OUTCOME_APPLIED


async def test_a_batch_gives_each_event_its_own_result_in_order(billing, stub) -> None:
    applied_before = subscription_event()
    assert await apply(stub, applied_before) == Outcome.OUTCOME_APPLIED
    fresh = subscription_event()
    broken = subscription_event()
    broken["data"]["object"]["status"] = 7  # not a string: malformed
    ignored = event_envelope(
        "checkout.session.expired", {"id": "cs_1", "object": "checkout.session"}, created=1
    )
    batch = [fresh, broken, applied_before, ignored]

    reply = await stub.ApplyStripeEvents(
        billing_pb2.ApplyStripeEventsRequest(events=[request_for(e) for e in batch]),
        metadata=RELAY.metadata(None),
    )

    assert [r.event_id for r in reply.results] == [e["id"] for e in batch]
    fates = [
        (r.error.code, r.error.message) if r.WhichOneof("result") == "error" else r.outcome
        for r in reply.results
    ]
    assert fates[0] == Outcome.OUTCOME_APPLIED
    assert fates[1][0] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "malformed" in fates[1][1]
    assert fates[2:] == [Outcome.OUTCOME_DUPLICATE, Outcome.OUTCOME_IGNORED]
    assert await recorded_outcome(billing, fresh["id"]) == "applied"
    assert await recorded_outcome(billing, broken["id"]) is None
    assert await mirrored(billing, subscriptions_table, fresh["data"]["object"]["id"]) is not None


async def test_an_event_billing_does_not_act_on_is_ignored_and_recorded_once(billing, stub) -> None:
    """A payment intent of a subscription's invoice: not a purchase, so not mirrored."""
    subscription = await subscribe(billing, await stripe_only_customer(billing))
    invoice = await billing.stripe.v1.invoices.retrieve_async(
        subscription.latest_invoice, params={"expand": ["payments"]}
    )
    assert invoice.payments is not None
    intent_id = invoice.payments.data[0].payment.payment_intent
    assert isinstance(intent_id, str)
    event = await stripe_event(billing, "payment_intent.succeeded", intent_id)

    assert await apply(stub, event) == Outcome.OUTCOME_IGNORED
    assert await recorded_outcome(billing, event["id"]) == "ignored"
    assert await apply(stub, event) == Outcome.OUTCOME_DUPLICATE


async def test_an_event_needing_stripe_while_stripe_is_down_is_unavailable_and_not_recorded(
    billing, stub
) -> None:
    subscription = await subscribe(billing, await stripe_only_customer(billing))
    creation = await stripe_event(billing, "customer.subscription.created", subscription.id)
    assert await apply(stub, creation) == Outcome.OUTCOME_APPLIED
    same_second = restamped(creation, created=creation["created"])  # settled by a fetch
    unreachable = create_stripe_client(
        secret_key=EMULATOR_KEY,
        api_base=f"http://127.0.0.1:{free_port()}",
        max_network_retries=0,
    )

    async with billing_server(billing, unreachable) as cut_off:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await apply(cut_off, same_second)
        batch = await cut_off.ApplyStripeEvents(
            billing_pb2.ApplyStripeEventsRequest(events=[request_for(same_second)]),
            metadata=RELAY.metadata(None),
        )
    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
    assert batch.results[0].error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert await recorded_outcome(billing, same_second["id"]) is None

    # The relay's retry, once Stripe is back, applies it.
    assert await apply(stub, same_second) == Outcome.OUTCOME_APPLIED


async def test_an_event_slower_than_the_call_allows_fails_alone_in_its_batch(billing, stub) -> None:
    """Stripe accepts the connection and never answers: the event needing it is UNAVAILABLE
    before the call's deadline, and the rest of the batch is answered."""
    subscription = await subscribe(billing, await stripe_only_customer(billing))
    creation = await stripe_event(billing, "customer.subscription.created", subscription.id)
    assert await apply(stub, creation) == Outcome.OUTCOME_APPLIED
    same_second = restamped(creation, created=creation["created"])  # settled by a fetch
    quick = event_envelope(
        "checkout.session.expired", {"id": "cs_2", "object": "checkout.session"}, created=1
    )
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hanging = create_stripe_client(
            secret_key=EMULATOR_KEY,
            api_base=f"http://127.0.0.1:{silent.getsockname()[1]}",
            max_network_retries=0,
        )
        async with billing_server(billing, hanging) as slow:
            reply = await slow.ApplyStripeEvents(
                billing_pb2.ApplyStripeEventsRequest(
                    events=[request_for(same_second), request_for(quick)]
                ),
                metadata=RELAY.metadata(None),
                timeout=2,
            )
    late, answered = reply.results
    assert late.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert answered.outcome == Outcome.OUTCOME_IGNORED
    assert await recorded_outcome(billing, same_second["id"]) is None
    assert await recorded_outcome(billing, quick["id"]) == "ignored"
