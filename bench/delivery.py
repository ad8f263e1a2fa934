"""Delivery figures: receive-to-applied lag at a steady rate, and the relay draining a backlog.

Both use the realistic mix of `bench/stripe_mix.py` and count billing's answers (the inbox's
`outcome`: applied, ignored, stale, duplicate), so a run in which billing did not really write
fails instead of flattering. The sender is a minimal keep-alive client (a general-purpose one
took a third of a core here, starving the system it measured; Stripe's senders are not on our
machine); it reports the rate it reached, so a sender that fell behind shows.
"""

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
import uvloop

from bench.stripe_mix import NOT_CONSUMED, SignedEvent
from services.webhooks import inbox

# Billing must apply at least this share of the events it consumes, else the bench fails.
MIN_APPLIED_SHARE = 0.9
# The events a lag phase waits for after the last is sent, at most; then it reports what it has.
LAG_WAIT_SECONDS = 15
DRAIN_WAIT_SECONDS = 30
# Requests in flight while a backlog is posted (the relay is paused meanwhile).
BACKLOG_CONCURRENCY = 32
# How long the sender waits for an answer before counting the request as failed.
ANSWER_TIMEOUT = 30
# The steady sender's wake-ups (a sleep per request cost more CPU than the requests).
SEND_TICK = 0.005


def one_row(cursor: psycopg.Cursor[Any]) -> Any:
    """The one row a query returns (an aggregate always returns one)."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the query returned no row")
    return row


class _Connections:
    """Keep-alive HTTP/1.1 connections to one host, each carrying one request at a time."""

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
        # A stalled receiver counts as a failed request instead of hanging the bench.
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=ANSWER_TIMEOUT)
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


def _raw_post(url: str, event: SignedEvent) -> bytes:
    parts = urlsplit(url)
    data = event.body.encode()
    return (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nStripe-Signature: {event.signature}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


@dataclass(frozen=True)
class Sent:
    """How a sender did: the rate at which it issued the requests, the last answer's time, and
    the requests not answered 200 (refused, or no answer in ANSWER_TIMEOUT)."""

    issue_rate: float  # events/s from the first request issued to the last
    seconds: float  # from the first request issued to the last answer
    failed: int


async def _post(receiver_url: str, events: list[SignedEvent], rate: float | None) -> Sent:
    """POST `events` in order: on a schedule of `rate` per second (each tick of SEND_TICK
    issues every request then due), or (rate None) as fast as BACKLOG_CONCURRENCY requests in
    flight allow."""
    requests = [_raw_post(receiver_url, event) for event in events]
    parts = urlsplit(receiver_url)
    connections = _Connections(parts.hostname or "127.0.0.1", parts.port or 80)
    in_flight = asyncio.Semaphore(BACKLOG_CONCURRENCY)

    async def bounded(request: bytes) -> int:
        async with in_flight:
            return await connections.send(request)

    loop = asyncio.get_running_loop()
    pending: list[asyncio.Task[int]] = []
    try:
        start = loop.time()
        if rate is None:
            pending = [asyncio.create_task(bounded(request)) for request in requests]
        else:
            while len(pending) < len(requests):
                due = min(len(requests), int((loop.time() - start) * rate) + 1)
                pending += [
                    asyncio.create_task(connections.send(request))
                    for request in requests[len(pending) : due]
                ]
                await asyncio.sleep(SEND_TICK)
        issued = loop.time()
        statuses = await asyncio.gather(*pending, return_exceptions=True)
        answered = loop.time()
    finally:
        connections.close()
    failed = sum(status != 200 for status in statuses)
    # On schedule, n requests are issued over (n - 1)/rate seconds.
    return Sent((len(events) - 1) / max(issued - start, 1e-9), answered - start, failed)


def post_events(receiver_url: str, events: list[SignedEvent], rate: float | None = None) -> Sent:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_post(receiver_url, events, rate))


@dataclass(frozen=True)
class Outcomes:
    """Billing's answers for one phase's events (the inbox's `outcome`, or the event's state
    while undelivered), and of the delivered events of types billing consumes, how many it
    applied."""

    counts: Counter[str]
    total: int
    consumed_delivered: int
    consumed_applied: int

    @property
    def applied(self) -> int:
        return self.counts["applied"]

    def check(self, what: str) -> None:
        """Fail loudly unless billing applied nearly every delivered event it consumes."""
        if self.consumed_applied < MIN_APPLIED_SHARE * self.consumed_delivered:
            raise RuntimeError(f"{what}: billing applied too few events: {self.describe()}")

    def describe(self) -> str:
        listed = ", ".join(f"{name} {n}" for name, n in sorted(self.counts.items()))
        return f"{listed} (of {self.total})"


def outcomes(conn: psycopg.Connection[Any], ids: list[str]) -> Outcomes:
    rows = conn.execute(
        "SELECT CASE WHEN state = 'delivered' THEN coalesce(outcome, 'delivered') ELSE state END, "
        "type <> ALL(%s), count(*) FROM webhooks.events WHERE id = ANY(%s) GROUP BY 1, 2",
        (sorted(NOT_CONSUMED), ids),
    ).fetchall()
    counts: Counter[str] = Counter()
    for name, _, n in rows:
        counts[name] += n
    consumed = {name: n for name, is_consumed, n in rows if is_consumed}
    delivered = sum(n for name, n in consumed.items() if name not in ("pending", "dead"))
    return Outcomes(counts, len(ids), delivered, consumed.get("applied", 0))


def _wait_delivered(conn: psycopg.Connection[Any], ids: list[str], seconds: float) -> bool:
    """Wait until none of `ids` is pending, for at most `seconds`; whether that happened."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pending = one_row(
            conn.execute(
                "SELECT count(*) FROM webhooks.events WHERE id = ANY(%s) AND state = 'pending'",
                (ids,),
            )
        )[0]
        if pending == 0:
            return True
        time.sleep(0.2)
    return False


def set_aside(conn: psycopg.Connection[Any], ids: list[str] | None = None) -> int:
    """Mark pending bench events (those of `ids`, or all) as delivered without delivering them,
    and move their keys' heads on as the relay would, so that what one phase left does not weigh
    on the next. `conn` is in autocommit."""
    keys = [
        key
        for (key,) in conn.execute(
            "UPDATE webhooks.events SET state = 'delivered', outcome = 'bench-skipped', "
            "delivered_at = now() WHERE state = 'pending' AND id LIKE 'evt_bench%%' "
            "AND (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s)) RETURNING ordering_key",
            {"ids": ids},
        ).fetchall()
    ]
    asyncio.run(_recompute_heads(conn.info.dsn, keys))
    return len(keys)


async def _recompute_heads(dsn: str, keys: list[str]) -> None:
    async with await psycopg.AsyncConnection.connect(dsn) as conn, conn.transaction():
        await inbox.recompute_heads(conn, keys)


@dataclass(frozen=True)
class Lag:
    rate: int
    sent: Sent  # how the sender did
    p50_ms: float
    p99_ms: float
    outcomes: Outcomes


def measure_lag(
    receiver_url: str, database_url: str, events: list[SignedEvent], *, rate: int
) -> Lag:
    """Send `events` at `rate`/s; receive-to-applied p50/p99 from the inbox's own timestamps."""
    ids = [event.id for event in events]
    sent = post_events(receiver_url, events, rate)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _wait_delivered(conn, ids, LAG_WAIT_SECONDS)
        p50, p99 = one_row(
            conn.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) FROM ("
                "  SELECT extract(epoch FROM delivered_at - received_at) * 1000 AS lag"
                "  FROM webhooks.events WHERE id = ANY(%s) AND state = 'delivered') d",
                (ids,),
            )
        )
        result = outcomes(conn, ids)
        set_aside(conn, ids)
    return Lag(rate, sent, float(p50 or 0), float(p99 or 0), result)


def cpu_seconds(pid: int) -> float:
    """CPU time of process `pid` and of its waited-for children (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        # Fields after the command name (which may hold spaces): utime is the 12th of them.
        fields = stat.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(field) for field in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Drain:
    events: int
    rate: float  # events/s from the relay's resumption to the last delivered
    complete: bool  # every event delivered within DRAIN_WAIT_SECONDS
    failed_posts: int  # backlog events the receiver did not take
    billing_cpu_ms: list[float]  # per event, by billing process
    relay_cpu_ms: float
    outcomes: Outcomes


def measure_drain(
    receiver_url: str,
    database_url: str,
    events: list[SignedEvent],
    *,
    relay: subprocess.Popen[Any],
    billing: list[subprocess.Popen[Any]],
) -> Drain:
    """Post `events` with the relay paused (a backlog, as after an outage of billing), resume
    it, and time its delivery of them; with the CPU billing and the relay spent meanwhile."""
    ids = [event.id for event in events]
    relay.send_signal(signal.SIGSTOP)
    try:
        sent = post_events(receiver_url, events)
        with psycopg.connect(database_url, autocommit=True) as conn:
            resumed: datetime = one_row(conn.execute("SELECT clock_timestamp()"))[0]
            cpu_before = [cpu_seconds(p.pid) for p in (relay, *billing)]
    finally:
        relay.send_signal(signal.SIGCONT)
    with psycopg.connect(database_url, autocommit=True) as conn:
        complete = _wait_delivered(conn, ids, DRAIN_WAIT_SECONDS)
        cpu = [
            cpu_seconds(p.pid) - before
            for p, before in zip((relay, *billing), cpu_before, strict=True)
        ]
        count, seconds = one_row(
            conn.execute(
                "SELECT count(*), extract(epoch FROM max(delivered_at) - %s) FROM webhooks.events "
                "WHERE id = ANY(%s) AND state = 'delivered'",
                (resumed, ids),
            )
        )
        result = outcomes(conn, ids)
        set_aside(conn, ids)
    per_event = 1000 / max(count, 1)
    return Drain(
        events=len(events),
        rate=count / float(seconds or 1),
        complete=complete and not sent.failed,
        failed_posts=sent.failed,
        billing_cpu_ms=[seconds * per_event for seconds in cpu[1:]],
        relay_cpu_ms=cpu[0] * per_event,
        outcomes=result,
    )
