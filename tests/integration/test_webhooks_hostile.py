"""Hostile webhook bodies and a database outage at the receiver: nothing good is lost, nothing
holds the door. Real HTTP, a real Postgres inbox, signed bodies."""

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest

from services.webhooks.receiver import create_receiver_app
from services.webhooks.settings import ReceiverSettings
from tests.e2e.database_switch import DatabaseSwitch
from tests.harness import serve_on_loopback
from tests.integration.webhook_signing import encode, signature_header, stripe_event

SECRET = "whsec_" + secrets.token_hex(16)
URL = "/webhooks/stripe"


@pytest.fixture(scope="module")
async def receiver(webhooks_database_url: str) -> AsyncIterator[str]:
    settings = ReceiverSettings(
        tatame_env="test", database_url=webhooks_database_url, stripe_webhook_secret=SECRET
    )
    server, task, port = await serve_on_loopback(create_receiver_app(settings))
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def client(receiver: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=300)
    async with httpx.AsyncClient(base_url=receiver, timeout=30, limits=limits) as client:
        yield client


async def post(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": signature_header(body, SECRET),
    }
    return await client.post(URL, content=body, headers=headers)


def customer_event(name_json: str) -> tuple[str, bytes]:
    """A signed-ready body whose customer name is the raw JSON text `name_json`."""
    event = stripe_event(obj={"id": "cus_" + secrets.token_hex(6), "object": "customer"})
    text = encode(event).decode()
    return event["id"], text.replace(
        '"object": "customer"', f'"object": "customer", "name": {name_json}'
    ).encode()


async def stored_names(database_url: str, ids: list[str]) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT id, payload->'data'->'object'->>'name' FROM webhooks.events WHERE id = ANY(%s)",
            (ids,),
        )
        return {row[0]: row[1] for row in await cursor.fetchall()}


async def test_poisoned_events_do_not_fail_their_batch_mates(client, webhooks_database_url) -> None:
    good = [customer_event('"Ana"') for _ in range(200)]
    nul = [customer_event('"Ana\\u0000Lima"') for _ in range(5)]
    surrogate = [customer_event('"Ana\\ud800"') for _ in range(2)]
    # Python reads this number as infinity; Postgres refuses it (numeric overflow).
    overflow = [customer_event("1e1000000") for _ in range(3)]
    everything = good + nul + surrogate + overflow
    answers = await asyncio.gather(*(post(client, body) for _, body in everything))
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200] * (len(everything) - 3) + [400] * 3, statuses
    assert {answer.json()["error"]["code"] for answer in answers[-3:]} == {"unstorable_event"}

    names = await stored_names(webhooks_database_url, [event_id for event_id, _ in everything])
    assert {names[event_id] for event_id, _ in good} == {"Ana"}
    assert {names[event_id] for event_id, _ in nul} == {"Ana\ufffdLima"}
    assert {names[event_id] for event_id, _ in surrogate} == {"Ana\ufffd"}
    assert not {event_id for event_id, _ in overflow} & set(names)


async def test_an_escaped_backslash_before_u0000_is_stored_as_sent(
    client, webhooks_database_url
) -> None:
    event_id, body = customer_event('"C:\\\\u0000"')
    assert (await post(client, body)).status_code == 200
    assert await stored_names(webhooks_database_url, [event_id]) == {event_id: "C:\\u0000"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "evt_1", "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"id": "evt_1", "big": ' + b"9" * 5000 + b"}",
    ],
    ids=["nested-100000-deep", "integer-of-5000-digits"],
)
async def test_signed_json_the_parser_cannot_read_is_400(client, body: bytes) -> None:
    response = await post(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_event"


async def test_while_the_database_is_down_events_are_answered_503_at_once_then_stored(
    webhooks_database_url,
) -> None:
    switch = DatabaseSwitch(webhooks_database_url)
    await switch.on()
    settings = ReceiverSettings(
        tatame_env="test",
        database_url=switch.url,
        stripe_webhook_secret=SECRET,
        webhooks_db_wait_seconds=0.5,
        webhooks_db_connect_timeout_seconds=1,
    )
    server, task, port = await serve_on_loopback(create_receiver_app(settings))
    # Far shorter than the pool's default wait (30 s): an answer must come before it.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        try:
            await switch.off()
            event = stripe_event()
            refused = await asyncio.gather(*(post(client, encode(event)) for _ in range(20)))
            assert {r.status_code for r in refused} == {503}
            assert {r.json()["error"]["code"] for r in refused} == {"inbox_unavailable"}
            await switch.on()
            for _ in range(50):  # the pool reconnects in the background
                retried = await post(client, encode(event))
                if retried.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert retried.status_code == 200, retried.text
        finally:
            server.should_exit = True
            await task
            await switch.off()


async def test_a_body_slower_than_the_body_timeout_is_408_and_stores_nothing(
    webhooks_database_url,
) -> None:
    settings = ReceiverSettings(
        tatame_env="test",
        database_url=webhooks_database_url,
        stripe_webhook_secret=SECRET,
        http_body_read_timeout_seconds=0.5,
    )
    server, task, port = await serve_on_loopback(create_receiver_app(settings))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        event = stripe_event()
        body = encode(event)
        writer.write(
            b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Stripe-Signature: " + signature_header(body, SECRET).encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), timeout=10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b'"code":"request_timeout"' in answer
        assert await stored_names(webhooks_database_url, [event["id"]]) == {}
    finally:
        server.should_exit = True
        await task
