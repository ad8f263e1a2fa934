"""Pausing and resuming a subscription's payments over real gRPC, with the emulator's test
clocks and Stripe's events delivered as the relay delivers them: a void pause keeps access for
the period paid and then none, the other behaviors keep access, and the refusals."""

import asyncio
import copy
import json
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import grpc
import pytest
import stripe
from google.protobuf.timestamp_pb2 import Timestamp
from tatame.billing.v1 import billing_pb2

from services.billing.settings import PAUSE_BEHAVIORS
from services.common.rpc import reason_of
from services.common.stripe_sdk import STRIPE_API_VERSION
from tests.harness import BillingHandle
from tests.integration.billing_accounts import (
    BASIC_FEATURES,
    PRO_ONLY,
    RELAY,
    Account,
    Outcome,
    Stub,
    apply_events,
    billing_server,
    end_period,
    stripe_json,
)
from tests.stripe_objects import event_envelope

PRO = BASIC_FEATURES | PRO_ONLY


class PairedUpdates(stripe.HTTPXClient):
    """The SDK's HTTP client, holding each update of the subscription `held` until a second is
    sent, then sending both at once: two unpauses that both read the subscription paused before
    either changed it."""

    def __init__(self) -> None:
        super().__init__(timeout=20)
        self.held: str | None = None
        self._pair = asyncio.Barrier(2)

    async def request_async(self, method, url, headers, post_data=None):
        if (method.upper(), urlsplit(url).path) == ("POST", f"/v1/subscriptions/{self.held}"):
            async with asyncio.timeout(20):
                await self._pair.wait()
        return await super().request_async(method, url, headers, post_data)


@pytest.fixture(scope="module")
async def paired() -> PairedUpdates:
    return PairedUpdates()


@pytest.fixture(scope="module")
async def racing(billing: BillingHandle, paired: PairedUpdates) -> AsyncIterator[Stub]:
    """Billing without trials whose Stripe updates of `paired.held` go in pairs."""
    target = billing.stripe_target
    stripe_client = stripe.StripeClient(
        target.secret_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": target.api_base} if target.api_base else None,
        http_client=paired,
    )
    async with billing_server(billing, trial_days=0, stripe_client=stripe_client) as stub:
        yield stub


@pytest.fixture(scope="module")
async def every_behavior(billing: BillingHandle) -> AsyncIterator[Stub]:
    """Billing without trials whose app may ask for any pause behavior."""
    async with billing_server(
        billing, trial_days=0, pause_behaviors=frozenset(PAUSE_BEHAVIORS)
    ) as stub:
        yield stub


def timestamp(when: datetime) -> Timestamp:
    converted = Timestamp()
    converted.FromDatetime(when)
    return converted


async def latest_invoice_status(account: Account, subscription_id: str) -> str:
    subscription = await account.subscription(subscription_id)
    invoice = await account.billing.stripe.v1.invoices.retrieve_async(
        subscription.latest_invoice_id
    )
    return str(invoice.status)


async def test_a_void_pause_keeps_the_paid_period_then_grants_nothing_until_unpaused(
    billing: BillingHandle, no_trial: Stub, paying: Account, racing: Stub, paired: PairedUpdates
) -> None:
    created = await paying.subscribe("pro_monthly")
    subscription_id = created.subscription.id

    reply = await paying.call("PauseSubscription", id=subscription_id)

    pause = reply.subscription.pause_collection
    assert pause.behavior == "void"
    assert not pause.HasField("resume_time")
    assert pause.access_end_time == reply.subscription.current_period_end
    assert reply.subscription.status == "active"
    assert await paying.features() == PRO  # the period already paid for
    again = await paying.call("PauseSubscription", id=subscription_id, behavior="void")
    assert again.subscription.pause_collection == pause  # the same pause: nothing changes

    await end_period(billing, no_trial, subscription_id)

    renewed = await paying.subscription(subscription_id)
    assert renewed.status == "active"
    assert renewed.current_period_start == pause.access_end_time
    assert renewed.pause_collection.access_end_time == pause.access_end_time
    assert await latest_invoice_status(paying, subscription_id) == "void"
    assert await paying.features() == set()

    # Two unpauses at once (a double tap), each sending its restart after both read the
    # subscription paused: one restart is charged (the second is Stripe's replay of the first,
    # or refused while the first is in flight).
    double_tap = copy.copy(paying)
    double_tap.stub = racing
    paired.held = subscription_id
    answers = await asyncio.gather(
        *(double_tap.call("UnpauseSubscription", id=subscription_id) for _ in range(2)),
        return_exceptions=True,
    )
    unpaused = next(a for a in answers if not isinstance(a, BaseException))

    # The period in the pause went unpaid: the cycle restarts now, invoiced and paid at once.
    assert not unpaused.subscription.HasField("pause_collection")
    assert unpaused.subscription.current_period_start.ToDatetime(tzinfo=UTC) > datetime.now(
        UTC
    ) - timedelta(minutes=1)
    assert unpaused.subscription.latest_invoice_id != renewed.latest_invoice_id
    restart = await billing.stripe.v1.invoices.retrieve_async(
        unpaused.subscription.latest_invoice_id
    )
    assert (restart.status, restart.billing_reason) == ("paid", "subscription_update")
    assert restart.amount_paid == restart.total > 0
    listed = await billing.stripe.v1.invoices.list_async(params={"subscription": subscription_id})
    restarts = [i for i in listed.data if i.billing_reason == "subscription_update"]
    assert len(restarts) == 1
    stripe_subscription = await billing.stripe.v1.subscriptions.retrieve_async(subscription_id)
    assert stripe_subscription.pause_collection is None
    await apply_events(billing, no_trial, subscription_id)
    assert await paying.features() == PRO
    assert (await paying.call("UnpauseSubscription", id=subscription_id)).subscription.HasField(
        "pause_collection"
    ) is False  # nothing to resume: no change


async def advance_clock(billing: BillingHandle, subscription_id: str, to: datetime) -> None:
    """Move the test clock of the subscription's customer to `to`, and wait until it is ready."""
    stripe_v1 = billing.stripe.v1
    subscription = await stripe_v1.subscriptions.retrieve_async(subscription_id)
    customer = await stripe_v1.customers.retrieve_async(str(subscription.customer))
    clock_id = str(customer.test_clock)
    await stripe_v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": int(to.timestamp())}
    )
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while (await stripe_v1.test_helpers.test_clocks.retrieve_async(clock_id)).status != "ready":
        assert datetime.now(UTC) < deadline, "the test clock is still advancing"
        await asyncio.sleep(0.05)


async def test_a_pause_until_a_date_ends_by_itself_and_the_period_it_voided_stays_unpaid(
    billing: BillingHandle, no_trial: Stub, paying: Account
) -> None:
    created = await paying.subscribe("basic_monthly")
    subscription_id = created.subscription.id
    period_end = created.subscription.current_period_end.ToDatetime(tzinfo=UTC)
    resumes = period_end + timedelta(days=3)
    reply = await paying.call(
        "PauseSubscription", id=subscription_id, resume_time=timestamp(resumes)
    )
    assert reply.subscription.pause_collection.resume_time.ToDatetime(tzinfo=UTC) == resumes
    await end_period(billing, no_trial, subscription_id)
    assert await paying.features() == set()
    # Another resume date replaces the pause in place, and keeps where access stopped.
    later = resumes + timedelta(days=1)
    moved = await paying.call("PauseSubscription", id=subscription_id, resume_time=timestamp(later))
    assert moved.subscription.pause_collection.resume_time.ToDatetime(tzinfo=UTC) == later
    assert moved.subscription.pause_collection.access_end_time == (
        created.subscription.current_period_end
    )

    await advance_clock(billing, subscription_id, later + timedelta(hours=1))
    await apply_events(billing, no_trial, subscription_id)

    # Stripe collects again from the next renewal: the period it voided grants nothing.
    assert not (await paying.subscription(subscription_id)).HasField("pause_collection")
    assert await paying.features() == set()

    await end_period(billing, no_trial, subscription_id)

    assert await latest_invoice_status(paying, subscription_id) == "paid"
    assert await paying.features() == BASIC_FEATURES


async def test_keep_as_draft_and_mark_uncollectible_keep_access_where_the_operator_offers_them(
    billing: BillingHandle, every_behavior: Stub
) -> None:
    for behavior, held_status in (
        ("keep_as_draft", "draft"),
        ("mark_uncollectible", "uncollectible"),
    ):
        account = Account(billing, every_behavior)
        created = await account.subscribe("basic_monthly")
        subscription_id = created.subscription.id

        reply = await account.call("PauseSubscription", id=subscription_id, behavior=behavior)

        assert reply.subscription.pause_collection.behavior == behavior
        assert not reply.subscription.pause_collection.HasField("access_end_time")
        await end_period(billing, every_behavior, subscription_id)
        assert await latest_invoice_status(account, subscription_id) == held_status
        assert await account.features() == BASIC_FEATURES


async def test_refusals_a_behavior_not_offered_a_past_resume_date_and_subscriptions_not_paying(
    paying: Account,
) -> None:
    created = await paying.subscribe("basic_monthly")
    subscription_id = created.subscription.id

    for fields, code, reason in (
        (
            {"behavior": "keep_as_draft"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "pause_behavior_not_allowed",
        ),
        ({"behavior": "stop"}, grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument"),
        (
            {"resume_time": timestamp(datetime.now(UTC) - timedelta(minutes=1))},
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_argument",
        ),
    ):
        refused = await paying.refused("PauseSubscription", id=subscription_id, **fields)
        assert (refused.code(), reason_of(refused)) == (code, reason), fields
    assert not (await paying.subscription(subscription_id)).HasField("pause_collection")
    # Paused and unpaused within the period paid: nothing is invoiced.
    await paying.call("PauseSubscription", id=subscription_id)
    unpaused = await paying.call("UnpauseSubscription", id=subscription_id)
    assert not unpaused.subscription.HasField("pause_collection")
    assert unpaused.subscription.latest_invoice_id == created.subscription.latest_invoice_id

    await paying.call("CancelSubscription", id=subscription_id, immediately=True)
    for method in ("PauseSubscription", "UnpauseSubscription"):
        ended = await paying.refused(method, id=subscription_id)
        assert (ended.code(), reason_of(ended)) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "subscription_ended",
        )
    missing = await paying.refused("PauseSubscription", id="sub_missing")
    assert missing.code() is grpc.StatusCode.NOT_FOUND


async def test_stripes_own_pause_of_a_trial_status_paused_is_mirrored_and_grants_nothing(
    billing: BillingHandle, no_trial: Stub, paying: Account
) -> None:
    """Stripe pauses a trial that ends without a payment method when so set (status `paused`,
    `customer.subscription.paused`, then `…resumed`); the emulator makes none, so the events
    carry a copy of a real subscription object in those states."""
    source = await paying.subscribe("basic_monthly")
    template = await stripe_json(billing, "get", f"/v1/subscriptions/{source.subscription.id}")
    other = Account(billing, no_trial)
    subscription = {
        **template,
        "id": "sub_" + secrets.token_hex(8),
        "customer": await other.customer_id(),
        "status": "paused",
    }
    created = int(time.time())

    for event_type, status, second in (("paused", "paused", 0), ("resumed", "active", 1)):
        full_type = f"customer.subscription.{event_type}"
        event = event_envelope(
            full_type, {**subscription, "status": status}, created=created + second
        )
        event_id = event["id"]
        reply = await no_trial.ApplyStripeEvent(
            billing_pb2.ApplyStripeEventRequest(
                event_id=event_id, type=full_type, payload=json.dumps(event).encode()
            ),
            metadata=RELAY.metadata(None),
        )
        assert reply.outcome == Outcome.OUTCOME_APPLIED
        assert (await other.subscription(subscription["id"])).status == status
        assert await other.features() == (set() if status == "paused" else BASIC_FEATURES)
