"""Webhook ingest and delivery figures, each with its baseline from the same run.

- Postgres ceiling: one connection inserting 3 KB jsonb rows one by one (autocommit).
- Naive handler: signature check + one INSERT … ON CONFLICT per request (bench/naive_webhook_app.py).
- Receiver: ours (group commit). Both loaded by wrk at 64 connections with pre-signed 3 KB
  events, never one twice; every 2xx means the event was committed. Each warms up for 2 s first.
  The relay is paused meanwhile so that it does not compete for the two cores, then resumed.
- Drain: the oldest 5,000 ingest events (invoice.paid) are left pending when the relay resumes;
  events per second from its resumption to the last of them delivered.
- Lag (measured first, on a steady inbox): signed events at a steady 200/s through receiver →
  relay → billing; receive-to-applied p50/p99 from the inbox's own timestamps. The sender is a
  minimal keep-alive client (a general-purpose one took a third of a core here, starving the
  system it measured; Stripe's senders are not on our machine).
"""

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from bench.wrk import WrkResult, run_wrk

EVENT_BYTES = 3000
# Signed events the file holds per second of an ingest run: above what either handler reaches on
# this machine, so no event is sent twice (a spent share shows as non-2xx responses).
MAX_RATE = 15_000
WARM_UP_SECONDS = 2
WRK_THREADS = 2
# The backlog the relay drains after the ingest runs (as after an outage of billing).
DRAIN_EVENTS = 5000
LUA = str(Path(__file__).with_name("signed_events.lua"))


def _signed_line(secret: str, event_type: str = "invoice.paid") -> tuple[str, str]:
    """A Stripe-shaped event of `event_type` (invoice.paid or customer.updated), padded to ~3 KB."""
    customer = "cus_bench" + secrets.token_hex(6)
    obj = (
        {"id": customer, "object": "customer", "email": "bench@example.com", "name": "Bench"}
        if event_type.startswith("customer.")
        else {
            "id": "in_bench" + secrets.token_hex(6),
            "object": "invoice",
            "customer": customer,
            "status": "paid",
            "currency": "usd",
            "amount_due": 2900,
            "amount_paid": 2900,
            "amount_remaining": 0,
            "total": 2900,
            "created": int(time.time()),
        }
    )
    event = {
        "id": "evt_bench" + secrets.token_hex(10),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }
    body = json.dumps(event)
    obj["description"] = "x" * max(0, EVENT_BYTES - len(body))
    body = json.dumps(event)
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}", body


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


def one_row(cursor: psycopg.Cursor[Any]) -> Any:
    """The one row a query returns (an aggregate always returns one)."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the query returned no row")
    return row


def count_rows(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as conn:
        return one_row(conn.execute(f"SELECT count(*) FROM {table}"))[0]  # noqa: S608 (fixed names)


@dataclass(frozen=True)
class Lag:
    sent: int
    applied: int
    p50_ms: float
    p99_ms: float


class _Connections:
    """Keep-alive HTTP/1.1 connections to one host, each carrying one request at a time.

    A deliberately small client: the sender shares the two cores with the system it measures,
    and a general-purpose client costs more CPU per request than the receiver itself.
    """

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._all: list[asyncio.StreamWriter] = []

    async def send(self, request: bytes) -> int:
        """Send one raw request; return the response's status code."""
        while self._idle:
            reader, writer = self._idle.pop()
            try:
                return await self._exchange(reader, writer, request)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()  # the server closed it while idle (keep-alive timeout): next one
        reader, writer = await asyncio.open_connection(self._host, self._port)
        self._all.append(writer)
        return await self._exchange(reader, writer, request)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> int:
        writer.write(request)
        # A stalled receiver fails the bench instead of hanging it.
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        self._idle.append((reader, writer))
        return status

    def close(self) -> None:
        for writer in self._all:
            writer.close()


def _raw_post(url: str, signature: str, body: str) -> bytes:
    parts = urlsplit(url)
    data = body.encode()
    return (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nStripe-Signature: {signature}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


async def _send_steady(receiver_url: str, secret: str, rate: int, seconds: int) -> list[str]:
    """POST `rate * seconds` distinct signed events, one every 1/`rate` s on schedule."""
    events = [_signed_line(secret, "customer.updated") for _ in range(rate * seconds)]
    ids = [json.loads(body)["id"] for _, body in events]
    requests = [_raw_post(receiver_url, signature, body) for signature, body in events]
    parts = urlsplit(receiver_url)
    connections = _Connections(parts.hostname or "127.0.0.1", parts.port or 80)
    try:
        start = time.monotonic()
        pending = []
        for n, request in enumerate(requests):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            pending.append(asyncio.create_task(connections.send(request)))
        statuses = await asyncio.gather(*pending)
    finally:
        connections.close()
    assert all(status == 200 for status in statuses), "receiver refused steady-rate events"
    return ids


def measure_lag(
    receiver_url: str, secret: str, database_url: str, *, rate: int, seconds: int
) -> Lag:
    ids = asyncio.run(_send_steady(receiver_url, secret, rate, seconds))
    deadline = time.monotonic() + 60
    with psycopg.connect(database_url) as conn:
        while time.monotonic() < deadline:
            done = one_row(
                conn.execute(
                    "SELECT count(*) FROM webhooks.events WHERE id = ANY(%s) AND state <> 'pending'",
                    (ids,),
                )
            )[0]
            if done == len(ids):
                break
            time.sleep(0.2)
        p50, p99, applied = one_row(
            conn.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), count(*) FROM ("
                "  SELECT extract(epoch FROM delivered_at - received_at) * 1000 AS lag"
                "  FROM webhooks.events WHERE id = ANY(%s) AND state = 'delivered') d",
                (ids,),
            )
        )
    return Lag(len(ids), applied, float(p50 or 0), float(p99 or 0))


@dataclass(frozen=True)
class IngestFigures:
    ceiling: float
    naive: WrkResult
    naive_rows: int
    receiver: WrkResult
    receiver_rows: int
    lag: Lag
    drain: float  # events/s delivering a backlog of DRAIN_EVENTS


def bench_webhooks(
    stack, directory: Path, *, naive_url: str, seconds: int, connections: int
) -> IngestFigures:
    """Run the webhook measurements against a running stack and the naive app."""
    secret = stack.env["STRIPE_WEBHOOK_SECRET"]
    database_url = stack.database_urls["webhooks"]
    events_file = directory / "signed-events.txt"
    warm_up_events = MAX_RATE * WARM_UP_SECONDS
    write_events(events_file, secret, warm_up_events + MAX_RATE * seconds)
    # Hundreds of MB just written: flush them now, not under Postgres's fsyncs while measuring.
    os.sync()
    # Lag first, on a steady inbox: the ingest phase below leaves hundreds of thousands of rows
    # whose bulk state change would otherwise weigh on the relay's claims until vacuumed.
    lag = measure_lag(stack.receiver_url, secret, database_url, rate=200, seconds=seconds)
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
        resumed = leave_backlog(database_url)
    finally:
        relay.send_signal(signal.SIGCONT)
    drain = measure_drain(database_url, resumed)
    return IngestFigures(ceiling, naive, naive_rows, receiver, receiver_rows, lag, drain)


def leave_backlog(database_url: str) -> datetime:
    """Of the pending bench events (the relay is paused), keep the oldest DRAIN_EVENTS pending
    and set the rest aside; return the database's clock, just before the relay resumes."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE webhooks.events SET state = 'delivered', outcome = 'bench-skipped', "
            "delivered_at = now() WHERE state = 'pending' AND id LIKE 'evt_bench%%' "
            "AND id NOT IN (SELECT id FROM webhooks.events WHERE state = 'pending' "
            "AND id LIKE 'evt_bench%%' ORDER BY created, id LIMIT %s)",
            (DRAIN_EVENTS,),
        )
        return one_row(conn.execute("SELECT clock_timestamp()"))[0]


def measure_drain(database_url: str, resumed: datetime) -> float:
    """Events per second from the relay's resumption to the last backlog event delivered."""
    deadline = time.monotonic() + 120
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            pending = one_row(
                conn.execute(
                    "SELECT count(*) FROM webhooks.events "
                    "WHERE state = 'pending' AND id LIKE 'evt_bench%'"
                )
            )[0]
            if pending == 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the relay did not drain the backlog in 120 s ({pending} left)")
        dead = one_row(
            conn.execute(
                "SELECT count(*) FROM webhooks.events WHERE state = 'dead' AND id LIKE 'evt_bench%'"
            )
        )[0]
        if dead:
            raise RuntimeError(f"{dead} backlog events were dead-lettered, not applied")
        count, seconds = one_row(
            conn.execute(
                "SELECT count(*), extract(epoch FROM max(delivered_at) - %s) FROM webhooks.events "
                "WHERE delivered_at > %s AND id LIKE 'evt_bench%%'",
                (resumed, resumed),
            )
        )
    return count / float(seconds)
