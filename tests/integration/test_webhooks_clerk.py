"""Clerk's door of the receiver (`POST /webhooks/clerk`) over real HTTP and a real Postgres inbox,
with messages signed by Svix's own library: any configured secret is accepted (rotation), the
Svix message id is the idempotency key, and nothing unsigned, stale or malformed is stored."""

import base64
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from pydantic import ValidationError
from svix.webhooks import Webhook

from services.webhooks.receiver import create_receiver_app
from services.webhooks.settings import ReceiverSettings
from tests.harness import serve_on_loopback
from tests.integration.clerk_signing import clerk_event, clerk_user, svix_headers

SECRET, OLD_SECRET, OTHER = (
    "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode() for _ in range(3)
)
STRIPE_SECRET = "whsec_" + secrets.token_hex(16)
URL = "/webhooks/clerk"


@pytest.fixture(scope="module")
async def receiver(webhooks_database_url: str) -> AsyncIterator[str]:
    settings = ReceiverSettings(
        tatame_env="test",
        database_url=webhooks_database_url,
        stripe_webhook_secret=STRIPE_SECRET,
        clerk_webhook_secrets=f"{SECRET}, {OLD_SECRET}",
    )
    server, task, port = await serve_on_loopback(create_receiver_app(settings))
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def client(receiver: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=receiver, timeout=30) as client:
        yield client


async def _row(url: str, event_id: str) -> tuple | None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT type, provider, source, ordering_key, object_id, customer_id, created, state"
            " FROM webhooks.events WHERE id = %s",
            (event_id,),
        )
        return await cursor.fetchone()


@pytest.mark.parametrize("secret", [SECRET, OLD_SECRET])
async def test_a_signed_clerk_event_is_stored_once_under_its_svix_id(
    client: httpx.AsyncClient, webhooks_database_url: str, secret: str
) -> None:
    user_id = "user_" + secrets.token_hex(6)
    body = clerk_event(
        "user.updated", clerk_user(user_id, email="a@example.com", first_name="A", last_name="B")
    )
    message_id = "msg_" + secrets.token_hex(10)
    answers = [
        await client.post(URL, content=body, headers=svix_headers(secret, body, message_id))
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json() for a in answers] == [
        {"received": True, "duplicate": False},
        {"received": True, "duplicate": True},
    ]
    row = await _row(webhooks_database_url, message_id)
    assert row is not None
    kind, provider, source, key, object_id, customer_id, created, state = row
    assert (kind, provider, source, key, object_id, customer_id, state) == (
        "user.updated",
        "clerk",
        "webhook",
        f"clerk:{user_id}",
        user_id,
        None,
        "pending",
    )
    assert int(created.timestamp()) == json.loads(body)["timestamp"] // 1000


def _tampered(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "svix-signature": "v1," + base64.b64encode(b"x" * 32).decode()}


def _stale(body: str, message_id: str) -> dict[str, str]:
    then = datetime.now(UTC) - timedelta(minutes=10)
    return {
        "svix-id": message_id,
        "svix-timestamp": str(int(then.timestamp())),
        "svix-signature": Webhook(SECRET).sign(message_id, then, body),
        "content-type": "application/json",
    }


@pytest.mark.parametrize("case", ["unknown_secret", "tampered", "stale", "missing", "malformed"])
async def test_an_unsigned_stale_or_malformed_signature_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, webhooks_database_url: str, case: str
) -> None:
    body = clerk_event("user.deleted", {"id": "user_x", "object": "user", "deleted": True})
    message_id = "msg_" + secrets.token_hex(10)
    headers = {
        "unknown_secret": svix_headers(OTHER, body, message_id),
        "tampered": _tampered(svix_headers(SECRET, body, message_id)),
        "stale": _stale(body, message_id),
        "missing": {"content-type": "application/json", "svix-id": message_id},
        "malformed": {**svix_headers(SECRET, body, message_id), "svix-signature": "nocomma"},
    }[case]
    answer = await client.post(URL, content=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_signature"
    assert await _row(webhooks_database_url, message_id) is None


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"type": "user.deleted", "timestamp": 1, "data": {}}),
        json.dumps({"type": "user.deleted", "data": {"id": "user_x"}}),
        json.dumps([1, 2]),
    ],
)
async def test_a_signed_body_that_is_not_a_clerk_event_is_a_400(
    client: httpx.AsyncClient, webhooks_database_url: str, body: str
) -> None:
    message_id = "msg_" + secrets.token_hex(10)
    answer = await client.post(URL, content=body, headers=svix_headers(SECRET, body, message_id))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "malformed_event"
    assert await _row(webhooks_database_url, message_id) is None


async def test_without_clerk_secrets_there_is_no_clerk_endpoint(webhooks_database_url: str) -> None:
    settings = ReceiverSettings(
        tatame_env="test", database_url=webhooks_database_url, stripe_webhook_secret=STRIPE_SECRET
    )
    server, task, port = await serve_on_loopback(create_receiver_app(settings))
    body = clerk_event("user.deleted", {"id": "user_x"})
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(
                f"http://127.0.0.1:{port}{URL}", content=body, headers=svix_headers(SECRET, body)
            )
    finally:
        server.should_exit = True
        await task
    assert answer.status_code == 404


@pytest.mark.parametrize("value", ["secret_without_prefix", "whsec_", f"{SECRET},nope"])
def test_clerk_secrets_must_be_svix_signing_secrets(value: str) -> None:
    with pytest.raises(ValidationError, match="CLERK_WEBHOOK_SECRETS"):
        ReceiverSettings(
            tatame_env="test",
            database_url="postgresql://x@127.0.0.1/x",
            stripe_webhook_secret=STRIPE_SECRET,
            clerk_webhook_secrets=value,
        )
