"""The backstop (Stripe's Events API → inbox), retention, and the operators' command line."""

import json
import os
import secrets
from datetime import timedelta

import psycopg
import pytest
import stripe
from psycopg_pool import AsyncConnectionPool

from services.webhooks import inbox
from services.webhooks.backstop import CURSOR, poll_stripe_events
from services.webhooks.grpc_api import OPS_CLI, start_admin_server
from services.webhooks.stripe_events import parse_event
from tests.harness import migrated_database
from tests.integration.ops_cli import events_cli
from tests.integration.webhook_signing import stripe_event
from tests.stripe_target import EMULATOR_KEY


@pytest.fixture(scope="module")
def database_url(postgres_admin_url: str) -> str:
    return migrated_database(postgres_admin_url, "webhooks")


@pytest.fixture
def emulator_client(stripe_emulator: str) -> stripe.StripeClient:
    return stripe.StripeClient(EMULATOR_KEY, base_addresses={"api": stripe_emulator})


async def poll(conn: psycopg.AsyncConnection, client: stripe.StripeClient):
    return await poll_stripe_events(
        conn=conn,
        stripe_client=client,
        livemode=False,
        initial_lookback=timedelta(hours=1),
        overlap=timedelta(seconds=60),
    )


async def test_the_backstop_inserts_events_the_receiver_never_got_once(
    database_url, emulator_client
) -> None:
    customer = await emulator_client.v1.customers.create_async(
        params={"email": "missed@example.com"}
    )
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        first = await poll(conn, emulator_client)
        second = await poll(conn, emulator_client)
        row = await (
            await conn.execute(
                "SELECT source, state, type FROM webhooks.events WHERE object_id = %s AND type = 'customer.created'",
                (customer.id,),
            )
        ).fetchone()
        cursor = await inbox.read_cursor(conn, CURSOR)
    assert row == ("backstop", "pending", "customer.created")
    assert first.inserted >= 1
    assert second.inserted == 0
    assert second.seen >= 1
    assert cursor is not None


async def test_retention_drops_old_delivered_payloads_and_keeps_the_audit_row(database_url) -> None:
    old, recent, pending = (stripe_event() for _ in range(3))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await inbox.insert_events(
            conn, [parse_event(json.dumps(e)) for e in (old, recent, pending)], source="webhook"
        )
        await conn.execute(
            "UPDATE webhooks.events SET state = 'delivered', delivered_at = now() - interval '40 days' WHERE id = %s",
            (old["id"],),
        )
        await conn.execute(
            "UPDATE webhooks.events SET state = 'delivered', delivered_at = now() WHERE id = %s",
            (recent["id"],),
        )
        dropped = await inbox.drop_old_payloads(conn, older_than_days=30)
        rows: dict[str, bool] = dict(
            await (
                await conn.execute(
                    "SELECT id, payload IS NULL FROM webhooks.events WHERE id = ANY(%s)",
                    ([old["id"], recent["id"], pending["id"]],),
                )
            ).fetchall()
        )
    assert dropped >= 1
    assert rows == {old["id"]: True, recent["id"]: False, pending["id"]: False}


async def test_the_operators_cli_lists_shows_and_replays_through_the_admin_api(
    database_url,
) -> None:
    event = stripe_event("invoice.payment_failed")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await inbox.insert_events(conn, [parse_event(json.dumps(event))], source="webhook")
        await inbox.record(
            conn, [inbox.Delivery(event["id"], "dead", error="INVALID_ARGUMENT: test")]
        )
    secret = secrets.token_urlsafe(32)
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False)
    await pool.open()
    admin = await start_admin_server(
        address="127.0.0.1:0", pool=pool, service_secrets={OPS_CLI: secret}
    )
    env = {
        **os.environ,
        "WEBHOOKS_ADMIN_TARGET": f"127.0.0.1:{admin.port}",
        "WEBHOOKS_ADMIN_CLIENT_SECRET": secret,
        "TATAME_ENV": "test",
    }

    try:
        listed = await events_cli(env, "list", "--state", "dead")
        shown = await events_cli(env, "show", event["id"])
        replayed = await events_cli(env, "replay", "--all-dead")
        refused = await events_cli(
            {**env, "WEBHOOKS_ADMIN_CLIENT_SECRET": secrets.token_urlsafe(32)}, "list"
        )
    finally:
        await admin.stop(0)
        await pool.close()
    assert listed.returncode == 0
    assert event["id"] in listed.stdout
    assert "INVALID_ARGUMENT" in listed.stdout
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["id"] == event["id"]
    assert replayed.returncode == 0
    assert event["id"] in replayed.stdout
    assert refused.returncode == 1
    assert "UNAUTHENTICATED" in refused.stderr
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        state = await (
            await conn.execute("SELECT state FROM webhooks.events WHERE id = %s", (event["id"],))
        ).fetchone()
    assert state == ("pending",)
