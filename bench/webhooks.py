"""Webhook ingest figures, each with its baseline from the same run (delivery: bench/delivery.py).

- Postgres ceiling: one connection inserting 3 KB jsonb rows one by one (autocommit).
- Naive handler: signature check + one INSERT … ON CONFLICT per request (bench/naive_webhook_app.py).
- Receiver: ours (group commit). Both loaded by wrk at 64 connections with pre-signed 3 KB
  events, never one twice; every 2xx means the event was committed. Each warms up for 2 s first.
  The relay is paused meanwhile so that it does not compete for the two cores; the ingest events
  (for customers nobody knows) are then set aside undelivered and the inbox vacuumed, so that the
  delivery phases after it start from a steady inbox.
"""

import json
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from tatame_devstack.run import Stack
from tatame_devstack.stripe_emulator.webhook_delivery import signature_header

from bench.delivery import one_row, set_aside
from bench.wrk import WrkResult, run_wrk
from tests.stripe_objects import event_envelope

EVENT_BYTES = 3000
# Signed events the file holds per second of an ingest run: above what either handler reaches on
# this machine (the receiver ~3,200/s), so no event is sent twice (a spent share shows as non-2xx
# responses).
MAX_RATE = 8_000
WARM_UP_SECONDS = 2
WRK_THREADS = 2
LUA = str(Path(__file__).with_name("signed_events.lua"))


def _signed_line(secret: str) -> tuple[str, str]:
    """An invoice.paid event of a customer nobody knows, padded to ~3 KB (ingest stores it and
    nothing delivers it)."""
    obj = {
        "id": "in_bench" + secrets.token_hex(6),
        "object": "invoice",
        "customer": "cus_bench" + secrets.token_hex(6),
        "status": "paid",
        "currency": "usd",
        "amount_due": 2900,
        "amount_paid": 2900,
        "amount_remaining": 0,
        "total": 2900,
        "created": int(time.time()),
    }
    event = event_envelope("invoice.paid", obj, event_id="evt_bench" + secrets.token_hex(10))
    body = json.dumps(event)
    obj["description"] = "x" * max(0, EVENT_BYTES - len(body))
    body = json.dumps(event)
    return signature_header(body.encode(), secret), body


def write_events(path: Path, secret: str, count: int) -> None:
    with path.open("w") as out:
        for _ in range(count):
            signature, body = _signed_line(secret)
            out.write(f"{signature} {body}\n")


def postgres_ceiling(database_url: str, seconds: float) -> float:
    """Single-row autocommit INSERTs of 3 KB jsonb per second on one connection."""
    payload = json.dumps({"pad": "x" * EVENT_BYTES})
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE ceiling (id text PRIMARY KEY, payload jsonb)")
        done, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            conn.execute(
                "INSERT INTO ceiling VALUES (%s, %s::jsonb) ON CONFLICT DO NOTHING",
                (secrets.token_hex(8), payload),
            )
            done += 1
    return done / seconds


def prepare_naive_table(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_naive_events")
        conn.execute(
            "CREATE TABLE bench_naive_events "
            "(id text PRIMARY KEY, type text NOT NULL, created timestamptz NOT NULL, "
            "livemode boolean NOT NULL, payload jsonb, received_at timestamptz DEFAULT now())"
        )


def count_rows(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as conn:
        return one_row(conn.execute(f"SELECT count(*) FROM {table}"))[0]  # noqa: S608 (fixed names)


@dataclass(frozen=True)
class IngestFigures:
    ceiling: float
    naive: WrkResult
    naive_rows: int
    receiver: WrkResult
    receiver_rows: int


def bench_ingest(
    stack: Stack, directory: Path, *, naive_url: str, seconds: int, connections: int
) -> IngestFigures:
    """Measure ingest against a running stack and the naive app, the relay paused; then set the
    ingest events aside and vacuum the inbox."""
    secret = stack.env["STRIPE_WEBHOOK_SECRET"]
    database_url = stack.database_urls["webhooks"]
    events_file = directory / "signed-events.txt"
    warm_up_events = MAX_RATE * WARM_UP_SECONDS
    write_events(events_file, secret, warm_up_events + MAX_RATE * seconds)
    # Hundreds of MB just written: flush them now, not under Postgres's fsyncs while measuring.
    os.sync()
    ceiling = postgres_ceiling(database_url, seconds)
    relay = stack.processes.child("webhooks-relay")
    relay.send_signal(signal.SIGSTOP)
    naive_url = f"{naive_url}/webhooks/stripe"

    def ingest(url: str, *, first: int, seconds: int) -> WrkResult:
        script = [LUA, str(events_file), str(WRK_THREADS), str(first)]
        return run_wrk(
            url, connections=connections, seconds=seconds, threads=WRK_THREADS, script=script
        )

    try:
        # Both handlers warm up on the same events, then each is measured on the rest.
        for url in (naive_url, stack.receiver_url):
            ingest(url, first=1, seconds=WARM_UP_SECONDS)
        before = count_rows(database_url, "bench_naive_events")
        naive = ingest(naive_url, first=warm_up_events + 1, seconds=seconds)
        naive_rows = count_rows(database_url, "bench_naive_events") - before
        before = count_rows(database_url, "webhooks.events")
        receiver = ingest(stack.receiver_url, first=warm_up_events + 1, seconds=seconds)
        receiver_rows = count_rows(database_url, "webhooks.events") - before
        with psycopg.connect(database_url, autocommit=True) as conn:
            set_aside(conn)
    finally:
        relay.send_signal(signal.SIGCONT)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE webhooks.events")
    return IngestFigures(ceiling, naive, naive_rows, receiver, receiver_rows)
