"""A billing database outage: every RPC answers UNAVAILABLE `database_unavailable` (503 at the
gateway, never 500), billing's health turns NOT_SERVING (the gateway's /readyz says so), and
both recover when the database is back."""

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from gateway.app import create_app
from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.billing.grpc_api import start_billing_server
from services.billing.grpc_policy import WEBHOOKS_RELAY
from services.common.db import create_engine
from services.common.errors import ErrorReason
from services.common.rpc import reason_of
from tests.e2e.database_switch import DatabaseSwitch
from tests.e2e.gateway_client import TokenIssuer, assert_error
from tests.harness import BillingHandle, serve_on_loopback


@dataclass
class SwitchedStack:
    switch: DatabaseSwitch
    billing_target: str
    gateway_url: str


@pytest.fixture
async def stack(
    billing: BillingHandle, billing_database_url: str, gateway
) -> AsyncIterator[SwitchedStack]:
    """Billing (its database behind a switch, checked every 0.2 s) and a gateway in front."""
    switch = DatabaseSwitch(billing_database_url)
    await switch.on()
    engine = create_engine(switch.url, pool_size=2)
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=engine,
        stripe_client=billing.stripe,
        service_secrets=billing.service_secrets,
        readiness_interval=0.2,
    )
    target = f"127.0.0.1:{server.port}"
    settings = gateway.settings.model_copy(update={"billing_target": target})
    http, task, port = await serve_on_loopback(create_app(settings))
    try:
        yield SwitchedStack(switch, target, f"http://127.0.0.1:{port}")
    finally:
        http.should_exit = True
        await task
        await server.stop(0)
        await engine.dispose()


async def eventually_ready(client: httpx.AsyncClient, status: int) -> None:
    for _ in range(50):
        if (await client.get("/readyz")).status_code == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz never answered {status}")


async def test_a_database_outage_is_unavailable_on_every_rpc_and_not_ready_until_it_ends(
    stack: SwitchedStack, billing: BillingHandle, issuer: TokenIssuer
) -> None:
    user_id = "user_" + secrets.token_hex(6)
    credentials = ServiceCredentials("gateway", billing.gateway_secret, audience="billing")
    metadata = credentials.metadata(Principal("user", user_id))
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client,
        grpc.aio.insecure_channel(stack.billing_target) as channel,
    ):
        stub = billing_pb2_grpc.BillingServiceStub(channel)
        assert (await client.get("/readyz")).status_code == 200
        await stack.switch.off()

        response = await client.get("/v1/subscriptions", headers=issuer.headers(user_id))
        assert_error(response, 503, "unavailable")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListSubscriptions(billing_pb2.ListSubscriptionsRequest(), metadata=metadata)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert reason_of(refused.value) == ErrorReason.DATABASE_UNAVAILABLE
        await eventually_ready(client, 503)
        assert_error(await client.get("/readyz"), 503, "billing_unavailable")

        await stack.switch.on()
        await eventually_ready(client, 200)
        listed = await client.get("/v1/subscriptions", headers=issuer.headers(user_id))
        assert listed.status_code == 200, listed.text


async def test_an_event_batch_during_an_outage_answers_each_event_database_unavailable(
    stack: SwitchedStack, billing: BillingHandle
) -> None:
    relay = ServiceCredentials(WEBHOOKS_RELAY, billing.service_secrets[WEBHOOKS_RELAY])
    event_id = "evt_" + secrets.token_hex(8)
    payload = {"id": event_id, "type": "test.unknown", "created": 1, "data": {"object": {}}}
    request = billing_pb2.ApplyStripeEventsRequest(
        events=[
            billing_pb2.ApplyStripeEventRequest(
                event_id=event_id, type="test.unknown", payload=json.dumps(payload).encode()
            )
        ]
    )
    await stack.switch.off()
    async with grpc.aio.insecure_channel(stack.billing_target) as channel:
        stub = billing_pb2_grpc.BillingServiceStub(channel)
        batch = await stub.ApplyStripeEvents(request, metadata=relay.metadata(None), timeout=10)
    [result] = batch.results
    assert result.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert result.error.reason == ErrorReason.DATABASE_UNAVAILABLE


async def test_the_read_rpcs_answer_database_unavailable_in_an_outage_and_recover_after_it(
    stack: SwitchedStack, billing: BillingHandle
) -> None:
    # GetCustomer, ListPlans and ListEntitlements run prepared statements straight on psycopg
    # (services/common/db.py: fetch_all): connections broken by the outage must be replaced.
    credentials = ServiceCredentials("gateway", billing.gateway_secret, audience="billing")
    metadata = credentials.metadata(Principal("user", "user_" + secrets.token_hex(6)))
    reads = (
        ("GetCustomer", billing_pb2.GetCustomerRequest()),
        ("ListPlans", billing_pb2.ListPlansRequest()),
        ("ListEntitlements", billing_pb2.ListEntitlementsRequest()),
    )
    async with grpc.aio.insecure_channel(stack.billing_target) as channel:
        stub = billing_pb2_grpc.BillingServiceStub(channel)

        async def outcomes() -> list[str]:
            """Each read's status name, and the reason when it failed."""
            seen = []
            for name, request in reads:
                try:
                    await getattr(stub, name)(request, metadata=metadata)
                    seen.append("OK")
                except grpc.aio.AioRpcError as e:
                    seen.append(f"{e.code().name} {reason_of(e)}")
            return seen

        served = ["NOT_FOUND not_found", "OK", "OK"]
        assert await outcomes() == served  # the pool's connections have prepared the reads
        await stack.switch.off()
        assert await outcomes() == ["UNAVAILABLE database_unavailable"] * 3
        await stack.switch.on()
        assert await outcomes() == served
