"""The relay against a real Postgres inbox and a billing stand-in served over real gRPC.

The stand-in records what it is asked to apply and fails on demand; the whole path with the real
billing service is in tests/e2e/test_webhooks_flow.py.
"""

import asyncio
import collections
import json
import secrets
import time
from collections.abc import AsyncIterator

import grpc
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc
from tatame.webhooks.v1 import webhooks_pb2, webhooks_pb2_grpc

from services.auth.grpc_interceptor import ServiceAuthInterceptor
from services.auth.service_credentials import ServiceCredentials, ServiceTokenVerifier
from services.common.grpc_server import start_grpc_server
from services.webhooks import inbox
from services.webhooks.grpc_api import OPS_CLI, start_admin_server
from services.webhooks.relay import SERVICE_NAME, Relay, backoff_delay
from services.webhooks.stripe_events import parse_event
from tests.harness import migrated_database
from tests.integration.webhook_signing import stripe_event

RELAY_SECRET = secrets.token_urlsafe(32)
APPLY = f"/{billing_pb2.DESCRIPTOR.services_by_name['BillingService'].full_name}/ApplyStripeEvents"


class BillingStandIn(billing_pb2_grpc.BillingServiceServicer):
    """Records applied event ids, the order per customer, and how many ran at once per customer.

    `failures[event_id]` fails that event's next attempts with these codes (its own result);
    `call_failures` fails whole calls, as an unreachable billing would.
    """

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.by_customer: dict[str, list[str]] = collections.defaultdict(list)
        self.failures: dict[str, list[grpc.StatusCode]] = {}
        self.call_failures: list[grpc.StatusCode] = []
        self.call_sizes: list[int] = []  # events per call
        self.delay = 0.0
        self._running: collections.Counter[str] = collections.Counter()
        self.most_at_once = 0

    async def ApplyStripeEvents(self, request, context):
        if self.call_failures:
            await context.abort(self.call_failures.pop(0), "injected call failure")
        self.call_sizes.append(len(request.events))
        results = await asyncio.gather(*(self._apply(event) for event in request.events))
        return billing_pb2.ApplyStripeEventsResponse(results=results)

    async def _apply(self, request) -> billing_pb2.ApplyStripeEventResult:
        customer = json.loads(request.payload)["data"]["object"].get("customer", "")
        self._running[customer] += 1
        self.most_at_once = max(self.most_at_once, self._running[customer])
        try:
            await asyncio.sleep(self.delay)
            failures = self.failures.get(request.event_id)
            if failures:
                code = failures.pop(0)
                error = billing_pb2.EventError(
                    code=code.value[0], message="injected", reason=code.name.lower()
                )
                return billing_pb2.ApplyStripeEventResult(event_id=request.event_id, error=error)
            self.applied.append(request.event_id)
            self.by_customer[customer].append(request.event_id)
            return billing_pb2.ApplyStripeEventResult(
                event_id=request.event_id,
                outcome=billing_pb2.ApplyStripeEventResponse.OUTCOME_APPLIED,
            )
        finally:
            self._running[customer] -= 1


@pytest.fixture(scope="module")
async def billing_stand_in() -> AsyncIterator[tuple[BillingStandIn, str]]:
    stand_in = BillingStandIn()
    server = await start_grpc_server(
        address="127.0.0.1:0",
        service_names=["tatame.billing.v1.BillingService"],
        add_servicers=lambda s: billing_pb2_grpc.add_BillingServiceServicer_to_server(stand_in, s),
        interceptors=[
            ServiceAuthInterceptor(
                ServiceTokenVerifier(secrets={SERVICE_NAME: RELAY_SECRET}, audience="billing"),
                {APPLY: frozenset({SERVICE_NAME})},
            )
        ],
    )
    yield stand_in, f"127.0.0.1:{server.port}"
    await server.stop(0)


@pytest.fixture(scope="module")
def database_url(postgres_admin_url: str) -> str:
    return migrated_database(postgres_admin_url, "webhooks")


class RunningRelays:
    """Relays as tasks in this loop, started and stopped by the test."""

    def __init__(self, database_url: str, target: str) -> None:
        self.database_url, self.target = database_url, target
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._channels: list[grpc.aio.Channel] = []

    def start(
        self,
        *,
        batches: int = 2,
        batch_size: int = 4,
        max_attempts: int = 4,
        poll_interval: float = 0.5,
    ) -> None:
        channel = grpc.aio.insecure_channel(self.target)
        self._channels.append(channel)
        relay = Relay(
            database_url=self.database_url,
            billing=billing_pb2_grpc.BillingServiceStub(channel),
            credentials=ServiceCredentials(SERVICE_NAME, RELAY_SECRET, audience="billing"),
            batches=batches,
            batch_size=batch_size,
            max_attempts=max_attempts,
            backoff_base=0.05,
            backoff_max=0.2,
            poll_interval=poll_interval,
            delivery_timeout=5,
        )
        self._tasks.append(asyncio.create_task(relay.run(self._stop)))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        for channel in self._channels:
            await channel.close(grace=None)


@pytest.fixture
async def relays(database_url, billing_stand_in) -> AsyncIterator[RunningRelays]:
    running = RunningRelays(database_url, billing_stand_in[1])
    yield running
    await running.stop()


async def store(database_url: str, *events: dict) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await inbox.insert_events(
            conn, [parse_event(json.dumps(e)) for e in events], source="webhook"
        )


async def states(database_url: str, ids: list[str]) -> dict[str, tuple[str, int, str | None]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT id, state, attempts, last_error FROM webhooks.events WHERE id = ANY(%s)", (ids,)
        )
        return {row[0]: row[1:] for row in await cursor.fetchall()}


async def wait_for(condition, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def event_for(customer: str, created: int, kind: str = "invoice.paid") -> dict:
    obj = {"id": "in_" + secrets.token_hex(6), "object": "invoice", "customer": customer}
    return stripe_event(kind, obj=obj, created=created)


def all_in_state(database_url: str, ids: list[str], state: str):
    async def check() -> bool:
        found = await states(database_url, ids)
        return len(found) == len(ids) and all(s[0] == state for s in found.values())

    return check


async def test_events_of_one_customer_are_delivered_in_created_order_one_at_a_time(
    database_url, billing_stand_in, relays
) -> None:
    stand_in, _ = billing_stand_in
    stand_in.delay = 0.02
    base = int(time.time()) - 1000
    customers = ["cus_" + secrets.token_hex(4) for _ in range(3)]
    events = [event_for(c, base + i) for i in range(6) for c in customers]
    shuffled = events[::-1]  # stored newest first: order must come from `created`
    await store(database_url, *shuffled)
    relays.start(batches=2, batch_size=16)  # room for all three customers in one batch
    ids = [e["id"] for e in events]
    await wait_for(all_in_state(database_url, ids, "delivered"))
    for customer in customers:
        expected = [e["id"] for e in events if e["data"]["object"]["customer"] == customer]
        assert stand_in.by_customer[customer] == expected
    assert stand_in.most_at_once == 1
    stand_in.delay = 0


async def test_retryable_failures_are_retried_until_applied(
    database_url, billing_stand_in, relays
) -> None:
    stand_in, _ = billing_stand_in
    event = event_for("cus_" + secrets.token_hex(4), int(time.time()))
    stand_in.failures[event["id"]] = [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ]
    await store(database_url, event)
    relays.start()
    await wait_for(all_in_state(database_url, [event["id"]], "delivered"))
    _, attempts, error = (await states(database_url, [event["id"]]))[event["id"]]
    assert attempts == 3
    assert error is None
    assert stand_in.applied.count(event["id"]) == 1


async def test_a_permanent_failure_is_dead_lettered_at_once(
    database_url, billing_stand_in, relays
) -> None:
    stand_in, _ = billing_stand_in
    event = event_for("cus_" + secrets.token_hex(4), int(time.time()))
    stand_in.failures[event["id"]] = [grpc.StatusCode.INVALID_ARGUMENT]
    await store(database_url, event)
    relays.start()
    await wait_for(all_in_state(database_url, [event["id"]], "dead"))
    _, attempts, error = (await states(database_url, [event["id"]]))[event["id"]]
    assert attempts == 1
    assert error is not None
    assert error.startswith("INVALID_ARGUMENT")


async def test_too_many_retryable_failures_dead_letter_then_a_replay_delivers(
    database_url, billing_stand_in, relays
) -> None:
    stand_in, _ = billing_stand_in
    event = event_for("cus_" + secrets.token_hex(4), int(time.time()))
    stand_in.failures[event["id"]] = [grpc.StatusCode.UNAVAILABLE] * 4
    await store(database_url, event)
    relays.start(max_attempts=4)
    await wait_for(all_in_state(database_url, [event["id"]], "dead"))
    assert (await states(database_url, [event["id"]]))[event["id"]][1] == 4

    ops_secret = secrets.token_urlsafe(32)
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False)
    await pool.open()
    admin = await start_admin_server(
        address="127.0.0.1:0", pool=pool, service_secrets={OPS_CLI: ops_secret}
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{admin.port}") as channel:
            stub = webhooks_pb2_grpc.WebhooksAdminServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ReplayEvents(webhooks_pb2.ReplayEventsRequest(all_dead=True))
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
            meta = ServiceCredentials(OPS_CLI, ops_secret, audience="webhooks").metadata(None)
            dead = await stub.ListEvents(
                webhooks_pb2.ListEventsRequest(
                    selection=webhooks_pb2.EventSelection(state=webhooks_pb2.DELIVERY_STATE_DEAD)
                ),
                metadata=meta,
            )
            assert event["id"] in {e.id for e in dead.events}
            shown = await stub.GetEvent(webhooks_pb2.GetEventRequest(id=event["id"]), metadata=meta)
            assert json.loads(shown.event.payload)["id"] == event["id"]
            assert shown.event.last_error.startswith("UNAVAILABLE")
            replayed = await stub.ReplayEvents(
                webhooks_pb2.ReplayEventsRequest(ids=webhooks_pb2.EventIds(ids=[event["id"]])),
                metadata=meta,
            )
            assert list(replayed.replayed_ids) == [event["id"]]
    finally:
        await admin.stop(0)
        await pool.close()
    await wait_for(all_in_state(database_url, [event["id"]], "delivered"))
    assert stand_in.applied.count(event["id"]) == 1


async def test_two_relays_never_deliver_the_same_event(
    database_url, billing_stand_in, relays
) -> None:
    stand_in, _ = billing_stand_in
    stand_in.delay = 0.005
    now = int(time.time())
    events = [event_for("cus_" + secrets.token_hex(4), now) for _ in range(60)]
    relays.start(batches=2, batch_size=8)
    relays.start(batches=2, batch_size=8)
    await store(database_url, *events)
    ids = [e["id"] for e in events]
    await wait_for(all_in_state(database_url, ids, "delivered"))
    counts = collections.Counter(i for i in stand_in.applied if i in set(ids))
    assert set(counts.values()) == {1}
    assert len(counts) == 60
    stand_in.delay = 0


async def test_one_batch_records_each_event_by_its_own_fate(
    database_url, billing_stand_in, relays
) -> None:
    stand_in, _ = billing_stand_in
    now = int(time.time())
    applied, retried, dead = (event_for("cus_" + secrets.token_hex(4), now) for _ in range(3))
    stand_in.failures[retried["id"]] = [grpc.StatusCode.UNAVAILABLE]
    stand_in.failures[dead["id"]] = [grpc.StatusCode.FAILED_PRECONDITION]
    stand_in.call_sizes.clear()
    await store(database_url, applied, retried, dead)
    relays.start(batches=1, batch_size=8)
    ids = [applied["id"], retried["id"]]
    await wait_for(all_in_state(database_url, ids, "delivered"))
    await wait_for(all_in_state(database_url, [dead["id"]], "dead"))
    found = await states(database_url, [*ids, dead["id"]])
    assert found[applied["id"]] == ("delivered", 1, None)
    assert found[retried["id"]] == ("delivered", 2, None)
    assert found[dead["id"]][:2] == ("dead", 1)
    assert found[dead["id"]][2] == "FAILED_PRECONDITION failed_precondition: injected"
    assert [stand_in.applied.count(i) for i in ids] == [1, 1]
    assert stand_in.call_sizes == [3, 1]  # one call for the batch, one for the retry


async def test_a_failed_call_retries_every_event_in_its_batch(
    database_url, billing_stand_in, relays
) -> None:
    stand_in, _ = billing_stand_in
    now = int(time.time())
    events = [event_for("cus_" + secrets.token_hex(4), now) for _ in range(3)]
    # Not an event's fault, whatever the code: nothing is dead-lettered for it.
    stand_in.call_failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED]
    await store(database_url, *events)
    relays.start(batches=1, batch_size=8)
    ids = [e["id"] for e in events]
    await wait_for(all_in_state(database_url, ids, "delivered"))
    assert stand_in.call_failures == []
    # All three were in the first call, which failed; each event's own jittered backoff decides
    # whether it met the second failure too, so an event took 2 or 3 attempts.
    attempts = [found[1] for found in (await states(database_url, ids)).values()]
    assert all(n in (2, 3) for n in attempts), attempts
    assert [stand_in.applied.count(i) for i in ids] == [1, 1, 1]


async def test_a_batch_too_large_for_one_message_is_delivered_in_several_calls(
    database_url, billing_stand_in, relays
) -> None:
    """Billing takes messages up to 4 MiB; six events of ~900 KB are one batch, not one call."""
    stand_in, _ = billing_stand_in
    now = int(time.time())
    events = [event_for("cus_" + secrets.token_hex(4), now) for _ in range(6)]
    for event in events:
        event["data"]["object"]["description"] = "x" * 900_000
    stand_in.call_sizes.clear()
    await store(database_url, *events)
    relays.start(batches=1, batch_size=8)
    ids = [e["id"] for e in events]
    await wait_for(all_in_state(database_url, ids, "delivered"))
    assert [stand_in.applied.count(i) for i in ids] == [1] * 6
    assert len(stand_in.call_sizes) > 1
    assert max(stand_in.call_sizes) <= 3


@pytest.mark.usefixtures("billing_stand_in")
async def test_a_stored_event_wakes_an_idle_relay_at_once(database_url, relays) -> None:
    """NOTIFY, not polling: with a 30 s poll, delivery within seconds proves the wake-up."""
    relays.start(batches=2, batch_size=4, poll_interval=30)
    await asyncio.sleep(0.5)  # idle, waiting
    for _ in range(3):  # and again once the first wake-ups are spent
        event = event_for("cus_" + secrets.token_hex(4), int(time.time()))
        await store(database_url, event)
        await wait_for(all_in_state(database_url, [event["id"]], "delivered"), within=3)


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    delays = [backoff_delay(n, base=1, cap=60) for n in range(10)]
    assert 0.5 <= delays[0] <= 1
    assert 4 <= delays[3] <= 8
    assert all(30 <= d <= 60 for d in delays[6:])
