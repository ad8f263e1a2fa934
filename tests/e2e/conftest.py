"""The gateway as a real HTTP server on a loopback port in front of the real billing server, and
the webhook pipeline (receiver + relay process) fed by the Stripe emulator."""

import base64
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tatame_devstack.ports import free_port

from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.webhooks.receiver import create_receiver_app
from services.webhooks.settings import ReceiverSettings
from tests.e2e.gateway_client import (
    ALLOWED_ORIGIN,
    AUTHORIZED_PARTY,
    ISSUER,
    MAX_BODY_BYTES,
    GatewayHandle,
    TokenIssuer,
    User,
)
from tests.e2e.webhook_pipeline import RelayProcess, WebhookPipeline
from tests.harness import BillingHandle, serve_on_loopback


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server (Debian's, which `make test` installs when missing) on a free
    loopback port for the session, keeping nothing on disk."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed: `make test` installs it", pytrace=False)
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    command = [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly"]
    process = subprocess.Popen(
        [*command, "no", "--dir", str(workdir), "--logfile", str(workdir / "redis.log")]
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, f"redis-server exited; see {workdir / 'redis.log'}"
            try:
                with redis.Redis.from_url(url, socket_timeout=1) as client:
                    client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
async def gateway(billing: BillingHandle, issuer: TokenIssuer) -> AsyncIterator[GatewayHandle]:
    public_pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = GatewaySettings(
        tatame_env="test",
        billing_target=billing.target,
        gateway_service_secret=billing.gateway_secret,
        clerk_issuer=ISSUER,
        clerk_jwt_key=public_pem.decode(),
        clerk_authorized_parties=(AUTHORIZED_PARTY,),
        cors_allowed_origins=(ALLOWED_ORIGIN,),
        gateway_max_body_bytes=MAX_BODY_BYTES,
        gateway_plans_cache_seconds=0,
        # Limits (in process memory) that the whole suite, all from 127.0.0.1, stays under;
        # tests/e2e/test_rate_limits.py runs gateways of its own to meet them.
        rate_limit_ip="100000/minute",
        rate_limit_read="100000/minute",
        rate_limit_write="100000/minute",
    )
    server, task, port = await serve_on_loopback(create_app(settings))
    yield GatewayHandle(f"http://127.0.0.1:{port}", settings)
    server.should_exit = True
    await task


@pytest.fixture
async def client(gateway: GatewayHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        yield client


@pytest.fixture
async def new_user(client: httpx.AsyncClient, issuer: TokenIssuer):
    """Makes users, each with its own token and Stripe customer."""

    async def make() -> User:
        user_id = "user_" + secrets.token_hex(6)
        headers = issuer.headers(user_id)
        created = await client.post(
            "/v1/customer", json={"email": f"{user_id}@example.com", "name": "Ana"}, headers=headers
        )
        assert created.status_code == 201, created.text
        return User(user_id, headers, created.json()["stripe_customer_id"])

    return make


@pytest.fixture(scope="session")
async def webhook_pipeline_server(
    billing: BillingHandle, inbox_database_url: str, stripe_emulator: str
) -> AsyncIterator[tuple[WebhookPipeline, str]]:
    """Receiver and relay in front of the session's billing, behind a Stripe webhook endpoint
    (disabled until `webhook_pipeline` enables it) and a Clerk one (signed with the pipeline's
    `clerk_secret`), storing into the inbox that billing asks; yields the pipeline and the Stripe
    endpoint's id."""
    del stripe_emulator  # asked for so that a run against Stripe's test mode skips its tests
    port = free_port()
    receiver_url = f"http://127.0.0.1:{port}/webhooks/stripe"
    endpoint = await billing.stripe.v1.webhook_endpoints.create_async(
        params={"url": receiver_url, "enabled_events": ["*"]}
    )
    await _deliver(billing, endpoint.id, enabled=False)
    secret = endpoint.secret
    assert secret is not None  # Stripe shows it in the answer to the create only
    webhooks_db = inbox_database_url
    clerk_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    settings = ReceiverSettings(
        tatame_env="test",
        database_url=webhooks_db,
        stripe_webhook_secret=secret,
        clerk_webhook_secrets=clerk_secret,
    )
    server, task, _ = await serve_on_loopback(create_receiver_app(settings), port=port)
    relay = RelayProcess(
        database_url=webhooks_db,
        billing_target=billing.target,
        relay_secret=billing.service_secrets["webhooks-relay"],
    )
    relay.start()
    yield WebhookPipeline(receiver_url, webhooks_db, secret, clerk_secret), endpoint.id
    relay.stop()
    server.should_exit = True
    await task


async def _deliver(billing: BillingHandle, endpoint_id: str, *, enabled: bool) -> None:
    await billing.stripe.v1.webhook_endpoints.update_async(
        endpoint_id, params={"disabled": not enabled}
    )


@pytest.fixture
async def webhook_pipeline(
    billing: BillingHandle, webhook_pipeline_server: tuple[WebhookPipeline, str]
) -> AsyncIterator[WebhookPipeline]:
    """The webhook pipeline, fed by every event Stripe sends during the test.

    Only during the tests that ask for it: the integration tests apply Stripe's events by hand
    to the same billing, and a relay applying them first would make their answers duplicates.
    """
    pipeline, endpoint_id = webhook_pipeline_server
    await _deliver(billing, endpoint_id, enabled=True)
    try:
        yield pipeline
    finally:
        await _deliver(billing, endpoint_id, enabled=False)
