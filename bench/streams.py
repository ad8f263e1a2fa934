"""`make bench`, billing streams: 1,000 open `GET /v1/billing/stream` on one gateway process, the
time from a change of billing's state to its arrival on the streams (beside the floor: the same
change heard on a bare `LISTEN` connection in the same run), and the memory each stream costs the
gateway (and billing, which holds one WatchBilling call per stream).

The streams are 5 per principal (the default per-principal bound) for 200 customers; a change is
one statement on the principal's customer row (its trigger bumps the version and sends the
NOTIFY, as any write of billing does), 100 of them spaced 50 ms apart, each reaching 5 streams."""

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg

STREAMS = 1000
PER_PRINCIPAL = 5
CHANGES = 100
CHANGE_INTERVAL_SECONDS = 0.05
OPEN_CONCURRENCY = 50
SETTLE_SECONDS = 2.0
# Changes whose arrivals are still awaited after this long count as lost.
ARRIVAL_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class StreamFigures:
    streams: int
    open_seconds: float
    arrival_ms: list[float]  # change → event on a stream, one per (change, stream)
    floor_ms: list[float]  # change → NOTIFY on a bare LISTEN connection, one per change
    expected_arrivals: int
    gateway_rss_per_stream: float  # bytes
    billing_rss_per_stream: float


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def tree_rss(pid: int) -> int:
    """Resident memory of `pid` and its descendants (granian's workers), in bytes."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        pending.extend(int(child) for child in children)
    return total


class _Arrivals:
    """Events seen by the streams, by (principal, version)."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, int], list[float]] = {}
        self.opened = 0

    def seen(self, principal: str, version: int) -> None:
        self.at.setdefault((principal, version), []).append(time.time())


async def _stream(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    principal: str,
    arrivals: _Arrivals,
    opened: asyncio.Event,
    gate: asyncio.Semaphore,
) -> None:
    """One stream: opened while holding `gate` (until its first event), then read."""
    headers = {"Authorization": f"Bearer {token}"}
    await gate.acquire()
    held = True
    try:
        async with session.get(url, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"stream refused: {response.status} {await response.text()}")
            version: int | None = None
            async for raw in response.content:
                line = raw.rstrip(b"\r\n")
                if line.startswith(b"id:"):
                    version = int(line[3:])
                elif not line and version is not None:
                    if held:
                        held = False
                        gate.release()
                        arrivals.opened += 1
                        if arrivals.opened == STREAMS:
                            opened.set()
                    else:
                        arrivals.seen(principal, version)
                    version = None
    finally:
        if held:
            gate.release()


async def _first_failure(tasks: list["asyncio.Task[None]"]) -> None:
    """Raise the error of the first stream that fails (a stream never ends by itself)."""
    for done in asyncio.as_completed(tasks):
        await done
        raise RuntimeError("a stream ended early")


async def _floor_listener(database_url: str, heard: dict[str, list[float]]) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("LISTEN billing_changes")
        async for notification in conn.notifies():
            heard.setdefault(notification.payload, []).append(time.time())


async def _measure(
    gateway_url: str,
    database_url: str,
    tokens: dict[str, str],
    gateway_pid: int,
    billing_pids: list[int],
) -> StreamFigures:
    principals = list(tokens)[: STREAMS // PER_PRINCIPAL]
    if len(principals) * PER_PRINCIPAL != STREAMS:
        raise RuntimeError(f"{STREAMS} streams need {STREAMS // PER_PRINCIPAL} principals")
    url = f"{gateway_url}/v1/billing/stream"
    arrivals = _Arrivals()
    opened = asyncio.Event()
    heard: dict[str, list[float]] = {}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        gateway_before = tree_rss(gateway_pid)
        billing_before = sum(tree_rss(pid) for pid in billing_pids)
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)
        started = time.monotonic()
        tasks = [
            asyncio.create_task(_stream(session, url, tokens[p], p, arrivals, opened, gate))
            for p in principals
            for _ in range(PER_PRINCIPAL)
        ]
        failed = asyncio.create_task(_first_failure(tasks))
        await asyncio.wait(
            [asyncio.create_task(opened.wait()), failed], return_when=asyncio.FIRST_COMPLETED
        )
        if failed.done():
            failed.result()
        failed.cancel()
        open_seconds = time.monotonic() - started
        await asyncio.sleep(SETTLE_SECONDS)
        gateway_rss = (tree_rss(gateway_pid) - gateway_before) / STREAMS
        billing_rss = (sum(tree_rss(pid) for pid in billing_pids) - billing_before) / STREAMS

        listener = asyncio.create_task(_floor_listener(database_url, heard))
        await asyncio.sleep(0.5)
        changed: dict[tuple[str, int], float] = {}
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            for n in range(CHANGES):
                principal = principals[n % len(principals)]
                began = time.time()
                async with conn.transaction():
                    await conn.execute(
                        "UPDATE billing.customers SET name = name WHERE principal = %s",
                        (principal,),
                    )
                    row = await (
                        await conn.execute(
                            "SELECT version FROM billing.live_versions WHERE principal = %s",
                            (principal,),
                        )
                    ).fetchone()
                assert row is not None
                changed[(principal, row[0])] = began
                await asyncio.sleep(CHANGE_INTERVAL_SECONDS)
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_SECONDS
        expected = len(changed) * PER_PRINCIPAL
        while time.monotonic() < deadline:
            if sum(len(arrivals.at.get(key, ())) for key in changed) >= expected:
                break
            await asyncio.sleep(0.1)
        listener.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(listener, *tasks, return_exceptions=True)
    arrival_ms = [
        (at - began) * 1000 for key, began in changed.items() for at in arrivals.at.get(key, ())
    ]
    floor_ms = []
    for (principal, _), began in changed.items():
        later = [at for at in heard.get(principal, ()) if at >= began]
        if later:
            floor_ms.append((min(later) - began) * 1000)
            heard[principal].remove(min(later))
    return StreamFigures(
        streams=STREAMS,
        open_seconds=open_seconds,
        arrival_ms=arrival_ms,
        floor_ms=floor_ms,
        expected_arrivals=expected,
        gateway_rss_per_stream=gateway_rss,
        billing_rss_per_stream=billing_rss,
    )


def measure_streams(
    gateway_url: str,
    database_url: str,
    tokens: dict[str, str],
    *,
    gateway_pid: int,
    billing_pids: list[int],
) -> StreamFigures:
    """Open the streams, make the changes, and return the figures (tokens: principal key →
    a session token of that principal)."""
    return asyncio.run(_measure(gateway_url, database_url, tokens, gateway_pid, billing_pids))


def describe(figures: StreamFigures) -> list[str]:
    arrival, floor = figures.arrival_ms, figures.floor_ms
    return [
        f"{figures.streams} streams opened in {figures.open_seconds:.1f} s "
        f"({PER_PRINCIPAL} per principal; {os.cpu_count()} cores)",
        f"change → billing.updated on the streams: p50 {statistics.median(arrival):.1f} ms, "
        f"p99 {percentile(arrival, 0.99):.1f} ms ({len(arrival)}/{figures.expected_arrivals} "
        "arrived)",
        f"change → NOTIFY on a bare LISTEN (floor): p50 {statistics.median(floor):.1f} ms, "
        f"p99 {percentile(floor, 0.99):.1f} ms",
        f"memory per open stream: gateway {figures.gateway_rss_per_stream / 1024:.1f} KiB, "
        f"billing {figures.billing_rss_per_stream / 1024:.1f} KiB (RSS delta / streams)",
    ]
