"""Stripe → receiver → inbox → relay → billing, with every part real: the Stripe emulator sends
signed webhooks, the relay runs as its own process, billing is the real gRPC server."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc
from tatame_devstack.ports import free_port
from tatame_devstack.run import register_emulator_webhook

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.billing.grpc_api import start_billing_server
from services.common.grpc_server import GrpcServer
from services.webhooks.receiver import create_receiver_app
from services.webhooks.settings import ReceiverSettings
from tests.e2e.webhook_pipeline import RelayProcess, eventually, scalar
from tests.harness import BillingHandle, migrated_database, serve_on_loopback
from tests.integration.webhook_signing import encode, signature_header, stripe_event

WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)


@dataclass
class Flow:
    receiver_url: str
    webhooks_db: str
    billing_db: str
    billing_target: str
    billing: BillingHandle


# A module's own billing server: its address, the servers running on it, and how to start one.
OwnBilling = tuple[str, list[GrpcServer], Callable[[], Awaitable[GrpcServer]]]


@pytest.fixture(scope="module")
async def own_billing(billing: BillingHandle) -> AsyncIterator[OwnBilling]:
    """A billing server of this module on a fixed port, so a test can stop and restart it."""
    address = f"127.0.0.1:{free_port()}"

    async def start() -> GrpcServer:
        return await start_billing_server(
            address=address,
            engine=billing.engine,
            stripe_client=billing.stripe,
            service_secrets=billing.service_secrets,
        )

    servers = [await start()]
    yield address, servers, start
    for server in servers:
        await server.stop(0)


@pytest.fixture(scope="module")
async def webhooks_db(postgres_admin_url: str) -> str:
    # Alembic runs its own event loop: give it a thread of its own.
    return await asyncio.to_thread(migrated_database, postgres_admin_url, "webhooks")


@pytest.fixture(scope="module")
async def flow(
    billing, own_billing, billing_database_url, webhooks_db, stripe_emulator
) -> AsyncIterator[Flow]:
    settings = ReceiverSettings(
        tatame_env="test", database_url=webhooks_db, stripe_webhook_secret=WEBHOOK_SECRET
    )
    server, task, port = await serve_on_loopback(create_receiver_app(settings))
    receiver_url = f"http://127.0.0.1:{port}/webhooks/stripe"
    register_emulator_webhook(
        stripe_emulator, receiver_url, WEBHOOK_SECRET, webhook_id="webhooks-flow"
    )
    yield Flow(receiver_url, webhooks_db, billing_database_url, own_billing[0], billing)
    server.should_exit = True
    await task


def relay_for(flow: Flow) -> RelayProcess:
    return RelayProcess(
        database_url=flow.webhooks_db,
        billing_target=flow.billing_target,
        relay_secret=flow.billing.service_secrets["webhooks-relay"],
    )


@pytest.fixture
def relay(flow: Flow) -> Iterator[RelayProcess]:
    running = relay_for(flow)
    running.start()
    yield running
    running.stop()


@pytest.mark.usefixtures("relay")
async def test_a_subscription_created_in_stripe_is_mirrored_in_billing(
    flow: Flow, billing: BillingHandle
) -> None:
    user = Principal("user", "user_" + secrets.token_hex(6))
    gateway = ServiceCredentials("gateway", billing.gateway_secret, audience="billing")
    async with grpc.aio.insecure_channel(flow.billing_target) as channel:
        stub = billing_pb2_grpc.BillingServiceStub(channel)
        created = await stub.CreateCustomer(
            billing_pb2.CreateCustomerRequest(email=f"{user.id}@example.com", name="Ana"),
            metadata=gateway.metadata(user),
        )
        price = (
            await billing.stripe.v1.prices.list_async(params={"lookup_keys": ["pro_monthly"]})
        ).data[0]
        subscription = await billing.stripe.v1.subscriptions.create_async(
            params={
                "customer": created.customer.stripe_customer_id,
                "items": [{"price": price.id}],
                "trial_period_days": 30,
            }
        )

        async def mirrored() -> bool:
            reply = await stub.ListSubscriptions(
                billing_pb2.ListSubscriptionsRequest(), metadata=gateway.metadata(user)
            )
            return any(
                s.id == subscription.id and s.status == "trialing" for s in reply.subscriptions
            )

        await eventually(mirrored)

    async def delivered_through_this_pipeline() -> bool:
        # The session's other webhook pipeline may have applied it first; this one must too.
        return (
            await scalar(
                flow.webhooks_db,
                "SELECT count(*) FROM webhooks.events WHERE object_id = %s AND state = 'delivered'",
                subscription.id,
            )
            >= 1
        )

    await eventually(delivered_through_this_pipeline)


async def post_events(flow: Flow, events: list[dict]) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for event in events:
            body = encode(event)
            response = await client.post(
                flow.receiver_url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": signature_header(body, WEBHOOK_SECRET),
                },
            )
            assert response.status_code == 200, response.text


def customer_events(count: int) -> list[dict]:
    now = int(time.time())
    return [
        stripe_event(
            "customer.updated",
            obj={
                "id": "cus_" + secrets.token_hex(6),
                "object": "customer",
                "email": "x@example.com",
                "name": "X",
            },
            created=now,
        )
        for _ in range(count)
    ]


@pytest.mark.usefixtures("relay")
async def test_events_pile_up_while_billing_is_down_and_all_apply_after_it_returns(
    flow: Flow, own_billing: OwnBilling
) -> None:
    _, servers, start = own_billing
    await servers.pop().stop(0)
    events = customer_events(30)
    await post_events(flow, events)
    ids = [e["id"] for e in events]

    async def retried() -> bool:
        return (
            await scalar(
                flow.webhooks_db,
                "SELECT count(*) FROM webhooks.events WHERE id = ANY(%s) AND attempts > 0 AND state = 'pending'",
                ids,
            )
            > 0
        )

    await eventually(retried)
    servers.append(await start())

    async def all_delivered() -> bool:
        return await scalar(
            flow.webhooks_db,
            "SELECT count(*) FROM webhooks.events WHERE id = ANY(%s) AND state = 'delivered'",
            ids,
        ) == len(ids)

    await eventually(all_delivered, within=60)
    assert await scalar(
        flow.billing_db, "SELECT count(*) FROM billing.applied_events WHERE event_id = ANY(%s)", ids
    ) == len(ids)


async def test_a_relay_killed_mid_delivery_loses_nothing_and_applies_nothing_twice(
    flow: Flow,
) -> None:
    events = customer_events(150)
    ids = [e["id"] for e in events]
    await post_events(flow, events)
    relay = relay_for(flow)
    relay.start()

    async def some_delivered() -> bool:
        return (
            await scalar(
                flow.webhooks_db,
                "SELECT count(*) FROM webhooks.events WHERE id = ANY(%s) AND state = 'delivered'",
                ids,
            )
            >= 10
        )

    await eventually(some_delivered)
    relay.kill()
    relay.start()
    try:

        async def all_delivered() -> bool:
            return await scalar(
                flow.webhooks_db,
                "SELECT count(*) FROM webhooks.events WHERE id = ANY(%s) AND state = 'delivered'",
                ids,
            ) == len(ids)

        await eventually(all_delivered, within=60)
    finally:
        relay.stop()
    applied = await scalar(
        flow.billing_db, "SELECT count(*) FROM billing.applied_events WHERE event_id = ANY(%s)", ids
    )
    assert applied == len(ids)  # one row per event id: nothing lost, nothing applied twice
