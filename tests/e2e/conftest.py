"""The gateway as a real HTTP server on a loopback port in front of the real billing server, and
the webhook pipeline (receiver + relay process) fed by the Stripe emulator."""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tatame_devstack.run import register_emulator_webhook

from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.webhooks.receiver import create_receiver_app
from services.webhooks.settings import ReceiverSettings
from tests.conftest import BillingHandle, migrated_database, serve_on_loopback

ISSUER = "https://clerk.tatame.test"
AUTHORIZED_PARTY = "https://app.tatame.test"
ALLOWED_ORIGIN = "https://app.tatame.test"
MAX_BODY_BYTES = 16 * 1024
SUCCESS_URL = f"{ALLOWED_ORIGIN}/billing/done"
CANCEL_URL = f"{ALLOWED_ORIGIN}/billing/cancelled"


@dataclass(frozen=True)
class TokenIssuer:
    """Signs Clerk-shaped session tokens with the key the gateway under test trusts."""

    key: rsa.RSAPrivateKey

    def token(self, user_id: str, *, key: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user_id,
            "sid": "sess_test",
            "azp": AUTHORIZED_PARTY,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "v": 2,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": "test-1"})

    def headers(self, user_id: str, **overrides: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, **overrides)}"}


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass(frozen=True)
class GatewayHandle:
    url: str
    settings: GatewaySettings


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
    )
    server, task, port = await serve_on_loopback(create_app(settings))
    yield GatewayHandle(f"http://127.0.0.1:{port}", settings)
    server.should_exit = True
    await task


@pytest.fixture
async def client(gateway: GatewayHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        yield client


@dataclass
class User:
    id: str
    headers: dict[str, str]
    customer_id: str


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


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    """`response` is the one error body with `status` and `code`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


def with_key(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    """`headers` with an `Idempotency-Key` (a new random one unless given)."""
    return {**headers, "Idempotency-Key": key or str(uuid.uuid4())}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RelayProcess:
    """`python -m services.webhooks relay` as a child process of the test."""

    def __init__(self, *, database_url: str, billing_target: str, relay_secret: str) -> None:
        self.env = {
            **os.environ,
            "TATAME_ENV": "test",
            "DATABASE_URL": database_url,
            "BILLING_TARGET": billing_target,
            "WEBHOOKS_RELAY_SERVICE_SECRET": relay_secret,
            "WEBHOOKS_ADMIN_GRPC_ADDRESS": "127.0.0.1:0",
            "WEBHOOKS_ADMIN_SERVICE_SECRETS": f"ops-cli={secrets.token_urlsafe(32)}",
            "RELAY_METRICS_PORT": "0",
            "RELAY_BACKOFF_BASE_SECONDS": "0.2",
            "RELAY_BACKOFF_MAX_SECONDS": "1",
            "RELAY_MAX_ATTEMPTS": "50",
            "RELAY_POLL_INTERVAL_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.webhooks", "relay"], env=self.env
        )

    def kill(self) -> None:
        assert self.process is not None, "the relay was not started"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


async def scalar(url: str, sql: str, *params: object) -> Any:
    """The one value of `sql`'s one row."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute(sql, params)).fetchone()
    assert row is not None, f"no row from {sql!r}"
    return row[0]


async def eventually(check, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class WebhookPipeline:
    receiver_url: str
    webhooks_db: str
    secret: str


@pytest.fixture(scope="session")
async def webhook_pipeline(
    billing: BillingHandle, postgres_admin_url: str, stripe_emulator: str
) -> AsyncIterator[WebhookPipeline]:
    """Receiver and relay in front of the session's billing, fed by the emulator's webhooks."""
    secret = "whsec_" + secrets.token_hex(16)
    webhooks_db = await asyncio.to_thread(migrated_database, postgres_admin_url, "webhooks")
    settings = ReceiverSettings(
        tatame_env="test", database_url=webhooks_db, stripe_webhook_secret=secret
    )
    server, task, port = await serve_on_loopback(create_receiver_app(settings))
    receiver_url = f"http://127.0.0.1:{port}/webhooks/stripe"
    register_emulator_webhook(stripe_emulator, receiver_url, secret, webhook_id="e2e-pipeline")
    relay = RelayProcess(
        database_url=webhooks_db,
        billing_target=billing.target,
        relay_secret=billing.service_secrets["webhooks-relay"],
    )
    relay.start()
    yield WebhookPipeline(receiver_url, webhooks_db, secret)
    relay.stop()
    server.should_exit = True
    await task
