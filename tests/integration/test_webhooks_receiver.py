"""The receiver over real HTTP and a real Postgres inbox, with signed webhook bodies."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from services.webhooks.receiver import create_receiver_app
from services.webhooks.settings import ReceiverSettings
from tests.harness import serve_on_loopback
from tests.integration.webhook_signing import encode, signature_header, stripe_event

SECRET = "whsec_" + secrets.token_hex(16)
OLD_SECRET = "whsec_" + secrets.token_hex(16)
URL = "/webhooks/stripe"


@pytest.fixture(scope="module")
async def receiver(webhooks_database_url: str) -> AsyncIterator[str]:
    settings = ReceiverSettings(
        tatame_env="test",
        database_url=webhooks_database_url,
        stripe_webhook_secret=f"{SECRET},{OLD_SECRET}",
    )
    server, task, port = await serve_on_loopback(create_receiver_app(settings))
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def client(receiver: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=receiver, timeout=30) as client:
        yield client


async def stored(database_url: str, event_id: str | None = None) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        if event_id is None:
            cursor = await conn.execute("SELECT count(*) FROM webhooks.events")
        else:
            cursor = await conn.execute(
                "SELECT count(*) FROM webhooks.events WHERE id = %s", (event_id,)
            )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


async def post(
    client: httpx.AsyncClient, body: bytes, *, secret: str = SECRET, **headers: str
) -> httpx.Response:
    sent = {"Content-Type": "application/json", "Stripe-Signature": signature_header(body, secret)}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return await client.post(URL, content=body, headers=sent)


async def test_signed_event_is_stored_with_its_envelope(client, webhooks_database_url) -> None:
    subscription = {
        "id": "sub_" + secrets.token_hex(6),
        "object": "subscription",
        "customer": "cus_abc",
    }
    event = stripe_event("customer.subscription.updated", obj=subscription)
    response = await post(client, encode(event))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "duplicate": False}
    async with await psycopg.AsyncConnection.connect(webhooks_database_url) as conn:
        row = await (
            await conn.execute(
                "SELECT type, object_id, customer_id, ordering_key, state, source, payload->>'id' "
                "FROM webhooks.events WHERE id = %s",
                (event["id"],),
            )
        ).fetchone()
    assert row == (
        "customer.subscription.updated",
        subscription["id"],
        "cus_abc",
        "cus_abc",
        "pending",
        "webhook",
        event["id"],
    )


async def test_the_same_event_posted_ten_times_concurrently_is_stored_once(
    client, webhooks_database_url
) -> None:
    event = stripe_event()
    body = encode(event)
    responses = await asyncio.gather(*(post(client, body) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 9
    assert await stored(webhooks_database_url, event["id"]) == 1


async def test_unknown_event_types_are_stored_and_acknowledged(
    client, webhooks_database_url
) -> None:
    event = stripe_event("tatame.never_heard_of_this", obj={"id": "thing_1", "object": "thing"})
    assert (await post(client, encode(event))).status_code == 200
    assert await stored(webhooks_database_url, event["id"]) == 1


async def test_an_event_signed_with_the_previous_secret_is_accepted_during_rotation(
    client, webhooks_database_url
) -> None:
    event = stripe_event()
    assert (await post(client, encode(event), secret=OLD_SECRET)).status_code == 200
    assert await stored(webhooks_database_url, event["id"]) == 1


def _bad_requests() -> dict[str, tuple[int, str, dict]]:
    body = encode(stripe_event())
    now = int(time.time())
    malformed = b'{"id": "evt_1", "type": '
    return {
        "missing signature": (
            400,
            "missing_signature",
            {"content": body, "headers": {"Content-Type": "application/json"}},
        ),
        "bad signature": (
            400,
            "bad_signature",
            {
                "content": body,
                "headers": {
                    "Content-Type": "application/json",
                    "Stripe-Signature": signature_header(body, "whsec_" + "0" * 32),
                },
            },
        ),
        "stale timestamp": (
            400,
            "stale_timestamp",
            {
                "content": body,
                "headers": {
                    "Content-Type": "application/json",
                    "Stripe-Signature": signature_header(body, SECRET, timestamp=now - 301),
                },
            },
        ),
        "garbled signature header": (
            400,
            "malformed_signature",
            {
                "content": body,
                "headers": {"Content-Type": "application/json", "Stripe-Signature": "nonsense"},
            },
        ),
        "malformed JSON": (
            400,
            "malformed_event",
            {
                "content": malformed,
                "headers": {
                    "Content-Type": "application/json",
                    "Stripe-Signature": signature_header(malformed, SECRET),
                },
            },
        ),
        "not an event": (
            400,
            "malformed_event",
            {
                "content": b"[1, 2]",
                "headers": {
                    "Content-Type": "application/json",
                    "Stripe-Signature": signature_header(b"[1, 2]", SECRET),
                },
            },
        ),
        "livemode mismatch": (
            400,
            "livemode_mismatch",
            {
                "content": (live := encode(stripe_event(livemode=True))),
                "headers": {
                    "Content-Type": "application/json",
                    "Stripe-Signature": signature_header(live, SECRET),
                },
            },
        ),
        "wrong content type": (
            415,
            "unsupported_media_type",
            {
                "content": body,
                "headers": {
                    "Content-Type": "text/plain",
                    "Stripe-Signature": signature_header(body, SECRET),
                },
            },
        ),
        "body over 1 MiB": (
            413,
            "payload_too_large",
            {
                "content": (big := b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'),
                "headers": {
                    "Content-Type": "application/json",
                    "Stripe-Signature": signature_header(big, SECRET),
                },
            },
        ),
        "not UTF-8": (
            400,
            "malformed_json",
            {
                "content": b"\xff\xfe",
                "headers": {
                    "Content-Type": "application/json",
                    "Stripe-Signature": signature_header(b"\xff\xfe", SECRET),
                },
            },
        ),
    }


@pytest.mark.parametrize("case", list(_bad_requests()))
async def test_each_bad_request_gets_its_status_and_leaves_the_inbox_unchanged(
    client, webhooks_database_url, case: str
) -> None:
    status, code, request = _bad_requests()[case]
    before = await stored(webhooks_database_url)
    response = await client.post(URL, **request)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert await stored(webhooks_database_url) == before


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus exposition; 0 while it has not been counted."""
    for family in text_string_to_metric_families(metrics):
        for series in family.samples:
            if series.name == name and series.labels == labels:
                return series.value
    return 0.0


async def test_health_readiness_and_metrics_count_what_this_receiver_saw(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    # The receiver counts into this process's registry; its own port serves it (test_observability).
    assert (await client.get("/metrics")).status_code == 404  # never on the public port
    before = generate_latest().decode()
    assert (await post(client, encode(stripe_event()))).status_code == 200
    assert (await post(client, encode(stripe_event()), secret=OLD_SECRET + "x")).status_code == 400
    after = generate_latest().decode()
    received = ("webhooks_events_received_total", {"source": "webhook"})
    rejected = ("webhooks_requests_rejected_total", {"reason": "bad_signature"})
    for name, labels in (received, rejected):
        assert sample(after, name, **labels) == sample(before, name, **labels) + 1


def test_a_missing_signing_secret_is_a_start_up_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ValidationError, match="stripe_webhook_secret"):
        ReceiverSettings(database_url="postgresql://webhooks@db/tatame")
    with pytest.raises(ValidationError, match="required"):
        ReceiverSettings(
            database_url="postgresql://webhooks@db/tatame", stripe_webhook_secret=" , "
        )


async def test_other_methods_on_the_webhook_path_are_405_and_store_nothing(
    client, webhooks_database_url
) -> None:
    before = await stored(webhooks_database_url)
    response = await client.get(URL)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert await stored(webhooks_database_url) == before


async def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(
    client, webhooks_database_url
) -> None:
    before = await stored(webhooks_database_url)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):  # 1.25 MiB with no Content-Length
            yield b" " * (64 * 1024)

    response = await client.post(
        URL,
        content=chunks(),
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await stored(webhooks_database_url) == before


async def test_every_answer_carries_a_request_id_and_unknown_paths_are_404(client) -> None:
    accepted = await post(client, encode(stripe_event()), X_Request_ID="stripe-retry-7")
    assert accepted.headers["x-request-id"] == "stripe-retry-7"
    missing = await client.post("/webhooks/stripe/extra", content=b"{}")
    assert missing.status_code == 404
    assert missing.json()["error"]["request_id"] == missing.headers["x-request-id"]


async def test_an_inbox_outage_is_503_and_the_retried_event_is_stored_once(
    webhooks_database_url,
) -> None:
    """Stripe retries any non-2xx: an event the database could not take must not be a 2xx."""
    name = "receiver-outage-" + secrets.token_hex(4)
    separator = "&" if "?" in webhooks_database_url else "?"
    settings = ReceiverSettings(
        tatame_env="test",
        database_url=f"{webhooks_database_url}{separator}application_name={name}",
        stripe_webhook_secret=SECRET,
    )
    server, task, port = await serve_on_loopback(create_receiver_app(settings))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            event = stripe_event()
            async with await psycopg.AsyncConnection.connect(webhooks_database_url) as conn:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (name,),
                )
            refused = await post(client, encode(event))
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "inbox_unavailable"
            assert await stored(webhooks_database_url, event["id"]) == 0
            retried = await post(client, encode(event))
            assert retried.status_code == 200, retried.text
            assert await stored(webhooks_database_url, event["id"]) == 1
    finally:
        server.should_exit = True
        await task


def _other_version_count(metrics: str, version: str) -> float:
    prefix = f'webhooks_events_other_api_version_total{{api_version="{version}"}} '
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


async def test_an_event_of_another_api_version_is_stored_and_counted_once(
    client, webhooks_database_url
) -> None:
    version = "2024-06-20." + secrets.token_hex(3)  # a label no other test uses
    event = {**stripe_event(), "api_version": version}
    pinned = stripe_event()
    for body in (encode(event), encode(event), encode(pinned)):  # the repeat is a duplicate
        assert (await post(client, body)).status_code == 200
    assert await stored(webhooks_database_url, event["id"]) == 1
    metrics = generate_latest().decode()
    assert _other_version_count(metrics, version) == 1
    assert _other_version_count(metrics, pinned["api_version"]) == 0
