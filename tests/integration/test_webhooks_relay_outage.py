"""The relay across an outage of billing: a real gRPC server stopped and started again.

While billing is down, events wait their backoff as always (one attempt each here: 300-600 s);
once billing answers again, the events held back by failed calls are due at once, while an event
that failed on its own keeps its backoff.
"""

import asyncio
import collections
from collections.abc import AsyncIterator
from datetime import datetime

import grpc
import psycopg
import pytest
from tatame.billing.v1 import billing_pb2_grpc
from tatame_devstack.ports import free_port

from services.auth.grpc_interceptor import ServiceAuthInterceptor
from services.auth.service_credentials import ServiceCredentials, ServiceTokenVerifier
from services.common.grpc_server import GrpcServer, start_grpc_server
from services.webhooks.relay import RELAY_CHANNEL_OPTIONS, SERVICE_NAME, Relay
from tests.harness import migrated_database
from tests.integration.test_webhooks_relay import (
    APPLY,
    RELAY_SECRET,
    BillingStandIn,
    all_in_state,
    event_for,
    states,
    store,
    wait_for,
)

# The first retry waits 300-600 s: far beyond what the test takes, however loaded the machine.
BACKOFF_SECONDS = 600.0


@pytest.fixture
def database_url(postgres_admin_url: str) -> str:
    return migrated_database(postgres_admin_url, "webhooks")


class Billing:
    """The stand-in on a fixed loopback port, stopped and started by the test."""

    def __init__(self) -> None:
        self.stand_in = BillingStandIn()
        self.address = f"127.0.0.1:{free_port()}"
        self._server: GrpcServer | None = None

    async def start(self) -> None:
        self._server = await start_grpc_server(
            address=self.address,
            service_names=["tatame.billing.v1.BillingService"],
            add_servicers=lambda s: billing_pb2_grpc.add_BillingServiceServicer_to_server(
                self.stand_in, s
            ),
            interceptors=[
                ServiceAuthInterceptor(
                    ServiceTokenVerifier(secrets={SERVICE_NAME: RELAY_SECRET}, audience="billing"),
                    {APPLY: frozenset({SERVICE_NAME})},
                )
            ],
        )

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
            self._server = None


@pytest.fixture
async def billing() -> AsyncIterator[Billing]:
    running = Billing()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def relay(database_url: str, billing: Billing) -> AsyncIterator[None]:
    stop = asyncio.Event()
    async with grpc.aio.insecure_channel(billing.address, options=RELAY_CHANNEL_OPTIONS) as channel:
        worker = Relay(
            database_url=database_url,
            billing=billing_pb2_grpc.BillingServiceStub(channel),
            credentials=ServiceCredentials(SERVICE_NAME, RELAY_SECRET, audience="billing"),
            batches=2,
            batch_size=8,
            max_attempts=12,
            backoff_base=BACKOFF_SECONDS,
            backoff_max=BACKOFF_SECONDS,
            poll_interval=0.5,
            delivery_timeout=5,
        )
        task = asyncio.create_task(worker.run(stop))
        yield
        stop.set()
        await task


async def next_attempts(database_url: str, ids: list[str]) -> dict[str, datetime]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT id, next_attempt_at FROM webhooks.events WHERE id = ANY(%s)", (ids,)
        )
        return dict(await cursor.fetchall())


async def delivered_at(database_url: str, ids: list[str]) -> list[datetime]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT delivered_at FROM webhooks.events WHERE id = ANY(%s)", (ids,)
        )
        return [row[0] for row in await cursor.fetchall()]


def attempted_and_waiting(database_url: str, ids: list[str]):
    async def check() -> bool:
        found = await states(database_url, ids)
        return len(found) == len(ids) and all(s[:2] == ("pending", 1) for s in found.values())

    return check


@pytest.mark.usefixtures("relay")
async def test_after_an_outage_held_events_are_due_at_once_and_own_failures_keep_their_backoff(
    database_url: str, billing: Billing
) -> None:
    stand_in = billing.stand_in
    base = int(asyncio.get_running_loop().time())
    # Billing is up and fails one event on its own: that one waits its 300-600 s.
    own = event_for("cus_own_failure", base)
    stand_in.failures[own["id"]] = [grpc.StatusCode.UNAVAILABLE]
    await store(database_url, own)
    await wait_for(attempted_and_waiting(database_url, [own["id"]]))

    await billing.stop()
    customers = [f"cus_outage_{n}" for n in range(6)]
    events = [event_for(c, base + i) for i in range(3) for c in customers]
    ids = [e["id"] for e in events]
    heads = [e["id"] for e in events[: len(customers)]]
    await store(database_url, *events)
    # Each customer's head is tried once, fails as a call, and waits its backoff; the rest wait
    # behind their heads.
    await wait_for(attempted_and_waiting(database_url, heads))
    await asyncio.sleep(2)  # polls and probes go on meanwhile; nothing is attempted again
    assert all(s[1] == 1 for s in (await states(database_url, heads)).values())
    backoff_ends = await next_attempts(database_url, [*heads, own["id"]])

    await billing.start()
    await wait_for(all_in_state(database_url, ids, "delivered"), within=20)
    # Delivered long before the first retry their backoff allowed (each head waits >= 300 s).
    first_retry = min(backoff_ends[h] for h in heads)
    assert max(await delivered_at(database_url, ids)) < first_retry
    assert all(s[1] == 2 for s in (await states(database_url, heads)).values())
    # Per customer still one at a time in created order, each applied once.
    for customer in customers:
        expected = [e["id"] for e in events if e["data"]["object"]["customer"] == customer]
        assert stand_in.by_customer[customer] == expected
    assert collections.Counter(stand_in.applied) == dict.fromkeys(ids, 1)
    # The event that failed on its own still waits its backoff.
    own_state = await states(database_url, [own["id"]])
    assert own_state[own["id"]][:2] == ("pending", 1)
    assert (await next_attempts(database_url, [own["id"]]))[own["id"]] == backoff_ends[own["id"]]
