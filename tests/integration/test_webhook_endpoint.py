"""`python -m services.webhooks endpoint ensure` against the Stripe emulator: the endpoint at the
pinned version with billing's event types, and the events Stripe then sends to it."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import stripe
from aiohttp import web
from tatame_devstack.run import running_stripe_emulator

from services.common.stripe_events import BILLING_EVENT_TYPES
from services.common.stripe_sdk import STRIPE_API_VERSION, create_stripe_client
from services.webhooks.endpoint import ensure_endpoint
from tests.stripe_target import EMULATOR_KEY

URL = "https://billing.tatame.test/webhooks/stripe"
pytestmark = pytest.mark.emulator  # events are sent to a loopback server


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An emulator of this module's own: webhook endpoints are account-wide."""
    log_path = tmp_path_factory.mktemp("endpoint-emulator") / "emulator.log"
    with running_stripe_emulator(log_path, "--port", "0") as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client(emulator: str) -> stripe.StripeClient:
    return create_stripe_client(secret_key=EMULATOR_KEY, api_base=emulator, max_network_retries=0)


async def endpoints_for(client: stripe.StripeClient, url: str) -> list[stripe.WebhookEndpoint]:
    listed = await client.v1.webhook_endpoints.list_async(params={"limit": 100})
    return [e for e in listed.data if e.url == url]


def ensure_cli(emulator: str, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TATAME_ENV": "test",
        "STRIPE_SECRET_KEY": EMULATOR_KEY,
        "STRIPE_API_BASE": emulator,
    }
    return subprocess.run(
        [sys.executable, "-m", "services.webhooks", "endpoint", "ensure", "--url", url, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_ensure_creates_the_endpoint_once_and_shows_its_secret_once(
    emulator: str, client: stripe.StripeClient
) -> None:
    url = URL + "?case=cli"
    first = await asyncio.to_thread(ensure_cli, emulator, url)
    assert first.returncode == 0, first.stderr
    assert "created we_" in first.stdout
    assert "signing secret" in first.stdout
    assert "whsec_" in first.stdout
    again = await asyncio.to_thread(ensure_cli, emulator, url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("up to date: we_")
    assert "whsec_" not in again.stdout + again.stderr
    [endpoint] = await endpoints_for(client, url)
    assert endpoint.api_version == STRIPE_API_VERSION
    assert sorted(endpoint.enabled_events) == sorted(BILLING_EVENT_TYPES)
    assert endpoint.status == "enabled"
    assert endpoint.secret is None  # Stripe shows it only in the answer that creates it


async def test_ensure_puts_back_the_event_types_and_reenables_a_disabled_endpoint(
    client: stripe.StripeClient,
) -> None:
    url = URL + "?case=drift"
    created = await ensure_endpoint(stripe_client=client, url=url)
    await client.v1.webhook_endpoints.update_async(
        created.endpoint_id, params={"enabled_events": ["customer.created"], "disabled": True}
    )
    repaired = await ensure_endpoint(stripe_client=client, url=url)
    assert (repaired.endpoint_id, repaired.created, repaired.updated) == (
        created.endpoint_id,
        False,
        True,
    )
    assert repaired.secret is None
    [endpoint] = await endpoints_for(client, url)
    assert sorted(endpoint.enabled_events) == sorted(BILLING_EVENT_TYPES)
    assert endpoint.status == "enabled"
    unchanged = await ensure_endpoint(stripe_client=client, url=url)
    assert (unchanged.created, unchanged.updated) == (False, False)


async def test_an_endpoint_at_another_version_gets_a_pinned_sibling_then_is_retired_on_request(
    client: stripe.StripeClient,
) -> None:
    url = URL + "?case=upgrade"
    old = await client.v1.webhook_endpoints.create_async(
        params={"url": url, "api_version": "2025-03-31.basil", "enabled_events": ["*"]}
    )
    created = await ensure_endpoint(stripe_client=client, url=url, retire_others=True)
    # Created now: the old endpoint keeps sending until the receiver trusts the new secret.
    assert created.created
    assert created.secret
    assert created.secret.startswith("whsec_")
    assert [o.id for o in created.others] == [old.id]
    assert created.retired == ()
    retired = await ensure_endpoint(stripe_client=client, url=url, retire_others=True)
    assert retired.endpoint_id == created.endpoint_id
    assert retired.retired == (old.id,)
    status = {e.id: (e.api_version, e.status) for e in await endpoints_for(client, url)}
    assert status == {
        old.id: ("2025-03-31.basil", "disabled"),
        created.endpoint_id: (STRIPE_API_VERSION, "enabled"),
    }


@dataclass
class Capture:
    """A loopback HTTP server standing in for the receiver: it keeps what Stripe posts."""

    url: str = ""
    posts: list[tuple[str, bytes]] = field(default_factory=list)  # (signature, body)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # How many posts of `refused_type` to answer 503 before taking one (a receiver down or
    # overloaded).
    refused_type: str = ""
    refusals_left: int = 0
    refused: list[tuple[str, bytes]] = field(default_factory=list)

    def types(self) -> list[str]:
        return [json.loads(body)["type"] for _, body in self.posts]


@pytest.fixture
async def capture() -> AsyncIterator[Capture]:
    captured = Capture()

    async def receive(request: web.Request) -> web.Response:
        post = (request.headers["Stripe-Signature"], await request.read())
        if captured.refusals_left > 0 and json.loads(post[1])["type"] == captured.refused_type:
            captured.refusals_left -= 1
            captured.refused.append(post)
            return web.json_response({"error": "overloaded"}, status=503)
        captured.posts.append(post)
        captured.arrived.set()
        return web.json_response({"received": True})

    app = web.Application()
    app.router.add_post("/webhooks/stripe", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    captured.url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/stripe"
    yield captured
    await runner.cleanup()


async def test_events_of_the_enabled_types_arrive_signed_with_the_endpoints_secret(
    client: stripe.StripeClient, capture: Capture
) -> None:
    result = await ensure_endpoint(stripe_client=client, url=capture.url)
    assert result.secret is not None
    intent = await client.v1.payment_intents.create_async(params={"amount": 500, "currency": "usd"})
    await client.v1.payment_intents.confirm_async(
        intent.id, params={"payment_method": "pm_card_visa"}
    )  # payment_intent.succeeded: not a type billing consumes
    customer = await client.v1.customers.create_async(params={"email": "ana@tatame.test"})

    async def customer_created_arrived() -> None:
        while "customer.created" not in capture.types():
            capture.arrived.clear()
            await capture.arrived.wait()

    await asyncio.wait_for(customer_created_arrived(), timeout=20)
    await client.v1.webhook_endpoints.delete_async(result.endpoint_id)
    assert not [t for t in capture.types() if t not in BILLING_EVENT_TYPES]
    signature, body = capture.posts[capture.types().index("customer.created")]
    stripe.WebhookSignature.verify_header(body.decode(), signature, result.secret, tolerance=300)
    event = json.loads(body)
    assert event["api_version"] == STRIPE_API_VERSION
    assert event["data"]["object"]["id"] == customer.id


async def test_an_event_the_endpoint_refused_is_sent_again_signed_anew(
    client: stripe.StripeClient, capture: Capture
) -> None:
    capture.refused_type, capture.refusals_left = "customer.created", 2
    result = await ensure_endpoint(stripe_client=client, url=capture.url)
    assert result.secret is not None
    customer = await client.v1.customers.create_async(params={"email": "bia@tatame.test"})

    async def arrived() -> None:
        while "customer.created" not in capture.types():
            capture.arrived.clear()
            await capture.arrived.wait()

    await asyncio.wait_for(arrived(), timeout=30)  # attempts after 1 s, then 1 s and 2 s more
    await client.v1.webhook_endpoints.delete_async(result.endpoint_id)
    refused = [json.loads(body)["id"] for _, body in capture.refused]
    signature, body = capture.posts[capture.types().index("customer.created")]
    event = json.loads(body)
    assert event["data"]["object"]["id"] == customer.id
    assert refused == [event["id"], event["id"]]  # the same event, until the endpoint took it
    assert [p for p in capture.posts if json.loads(p[1])["id"] == event["id"]] == [
        (signature, body)
    ]
    stripe.WebhookSignature.verify_header(body.decode(), signature, result.secret, tolerance=300)
    first_attempt = int(capture.refused[0][0].split(",")[0].removeprefix("t="))
    assert int(signature.split(",")[0].removeprefix("t=")) >= first_attempt + 3 - 1


def test_no_secret_or_key_reaches_the_output_of_a_refused_call(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TATAME_ENV": "test",
        "STRIPE_SECRET_KEY": "sk_test_not_a_real_key_" + "x" * 16,
        "STRIPE_API_BASE": "http://127.0.0.1:9",  # nothing listens on the discard port
        "STRIPE_MAX_NETWORK_RETRIES": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.webhooks", "endpoint", "ensure", "--url", URL],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert "sk_test_not_a_real_key" not in done.stdout + done.stderr


def test_production_refuses_a_plain_http_url() -> None:
    env = {**os.environ, "TATAME_ENV": "prod", "STRIPE_SECRET_KEY": "sk_test_" + "x" * 24}
    env.pop("STRIPE_API_BASE", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.webhooks",
            "endpoint",
            "ensure",
            "--url",
            "http://x.test/",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "must be https" in done.stderr
