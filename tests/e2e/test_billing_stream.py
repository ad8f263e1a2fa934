"""GET /v1/billing/stream through the real gateway and billing: a change applied by billing
reaches its user's stream (and no other user's), a reconnect with Last-Event-ID gets the current
state, the bounds answer clear errors, and the stream ends at the token's expiry."""

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from tests.e2e.gateway_client import GatewayHandle, TokenIssuer, User, assert_error
from tests.e2e.sse_client import Event, EventStream
from tests.e2e.test_subscriptions_api import MOBILE_STRIPE_VERSION
from tests.e2e.webhook_pipeline import eventually
from tests.harness import BillingHandle, serve_on_loopback

STREAM = "/v1/billing/stream"


@asynccontextmanager
async def billing_stream(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> AsyncIterator[EventStream]:
    async with client.stream("GET", STREAM, headers=headers, timeout=30) as response:
        yield EventStream(response)


async def updated_until(
    events: EventStream, wanted: Callable[[dict[str, Any]], bool], within: float = 20
) -> Event:
    """The first `billing.updated` whose body is `wanted`; every one before it is checked to be
    a well-formed update with a growing id."""
    deadline = time.monotonic() + within
    last_id = -1
    while True:
        event = await events.next(within=max(0.1, deadline - time.monotonic()))
        assert event is not None, "the stream ended"
        assert event.event == "billing.updated"
        assert event.id is not None
        assert int(event.id) > last_id
        last_id = int(event.id)
        if wanted(json.loads(event.data)):
            return event


def subscription_of(body: dict[str, Any]) -> dict[str, Any] | None:
    return body["subscription"]


async def subscribe(client: httpx.AsyncClient, user: User) -> str:
    created = await client.post(
        "/v1/subscriptions",
        json={"price": "basic_monthly", "stripe_version": MOBILE_STRIPE_VERSION},
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
    return created.json()["subscription"]["id"]


@pytest.mark.usefixtures("webhook_pipeline")
async def test_a_change_reaches_its_users_stream_only_and_a_reconnect_gets_the_current_state(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    ana, bea = await new_user(), await new_user()
    async with (
        billing_stream(client, ana.headers) as ana_events,
        billing_stream(client, bea.headers) as bea_events,
    ):
        # The first event is the current state: the body of GET /v1/billing.
        first = await ana_events.next()
        assert first is not None
        assert first.event == "billing.updated"
        assert first.id is not None
        screen = await client.get("/v1/billing", headers=ana.headers)
        assert json.loads(first.data) == screen.json()
        assert subscription_of(json.loads(first.data)) is None
        bea_first = await bea_events.next()
        assert bea_first is not None
        assert subscription_of(json.loads(bea_first.data)) is None

        subscription_id = await subscribe(client, ana)
        await updated_until(
            ana_events, lambda b: (subscription_of(b) or {}).get("id") == subscription_id
        )
        # A change made in Stripe alone reaches billing through the webhook path only.
        await billing.stripe.v1.subscriptions.update_async(
            subscription_id, params={"cancel_at_period_end": True}
        )
        canceling = await updated_until(
            ana_events,
            lambda b: (subscription_of(b) or {}).get("cancel_at_period_end") is True,
            within=120,
        )

        # Bea's stream saw none of it: it carries her own changes only.
        bea_subscription = await subscribe(client, bea)

        def bea_subscribed(body: dict[str, Any]) -> bool:
            assert subscription_id not in json.dumps(body)
            return (subscription_of(body) or {}).get("id") == bea_subscription

        await updated_until(bea_events, bea_subscribed)

    # Reconnecting with an older Last-Event-ID: the current state at once.
    async with billing_stream(client, {**ana.headers, "Last-Event-ID": first.id}) as again:
        current = await again.next()
        assert current is not None
        assert current.id is not None
        assert int(current.id) >= int(canceling.id or 0)
        assert (
            json.loads(current.data)
            == (await client.get("/v1/billing", headers=ana.headers)).json()
        )
        assert (subscription_of(json.loads(current.data)) or {}).get("cancel_at_period_end") is True


@pytest.fixture
async def tight_gateway(gateway: GatewayHandle) -> AsyncIterator[str]:
    """A gateway of its own with small stream bounds and frequent heartbeats."""
    settings = gateway.settings.model_copy(
        update={
            "gateway_stream_max_per_principal": 1,
            "gateway_stream_max_per_process": 2,
            "gateway_stream_heartbeat_seconds": 0.2,
        }
    )
    server, task, port = await serve_on_loopback(create_app(settings))
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_streams_past_the_bounds_are_refused_with_clear_errors(
    tight_gateway: str, new_user
) -> None:
    ana, bea, carla = await new_user(), await new_user(), await new_user()
    async with httpx.AsyncClient(base_url=tight_gateway, timeout=30) as client:
        assert_error(await client.get(STREAM), 401, "missing_token")
        bad_id = {**ana.headers, "Last-Event-ID": "evt_1"}
        assert_error(await client.get(STREAM, headers=bad_id), 400, "invalid_argument")
        async with billing_stream(client, ana.headers) as ana_events:
            assert await ana_events.next() is not None
            assert_error(await client.get(STREAM, headers=ana.headers), 429, "too_many_streams")
            async with billing_stream(client, bea.headers) as bea_events:
                assert await bea_events.next() is not None
                refused = await client.get(STREAM, headers=carla.headers)
                assert_error(refused, 503, "stream_capacity_reached")

        # Closed streams give their slots back.
        async def admitted() -> bool:
            async with client.stream("GET", STREAM, headers=ana.headers) as response:
                return response.status_code == 200

        await eventually(admitted, within=10)


async def test_the_stream_ends_when_the_token_expires(
    tight_gateway: str, new_user, issuer: TokenIssuer
) -> None:
    user = await new_user()
    expires = int(time.time()) + 3
    headers = issuer.headers(user.id, exp=expires)
    async with (
        httpx.AsyncClient(base_url=tight_gateway, timeout=30) as client,
        billing_stream(client, headers) as events,
    ):
        assert await events.next() is not None
        expired = await events.next(within=10)
        assert expired is not None
        assert expired.event == "session.expired"
        assert json.loads(expired.data)["code"] == "expired"
        assert time.time() >= expires
        assert await events.next() is None  # the server ended it
        assert events.comments >= 1  # heartbeats while it was idle
