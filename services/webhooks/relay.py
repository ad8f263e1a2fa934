"""The relay: claims due events and delivers them to billing's ApplyStripeEvents, with retries.
Clerk's events take the same path (the request names its provider); after a batch, the payloads
of events about a subject erased on request are blanked (privacy.redact_erased).

Several relays (and several batches in each) share the inbox. A batch is one transaction: one
query claims up to `batch_size` due events, at most one per Stripe customer, with row locks held
for the delivery (`FOR UPDATE SKIP LOCKED`), so no event is delivered by two at once; one
ApplyStripeEvents call applies them (each on its own in billing, with its own result; a batch
too large for one message takes several calls); one statement records every outcome. A relay
that dies mid-batch releases its events with its connection. Per Stripe customer, events go one
at a time in `created` order (see inbox.CLAIM_SQL). Woken at once by LISTEN/NOTIFY; polls too.

Outages of billing, breaker-style: while calls fail as a whole, each event waits its own
exponential backoff, and an idle relay asks billing with one empty ApplyStripeEvents call per poll
interval, no more. As soon as a call gets an answer again (a probe or a delivery), the events held
back by failed calls are due at once (inbox.release_held) instead of waiting out their backoff;
events that failed on their own keep theirs.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterator, Mapping
from dataclasses import replace

import grpc
import psycopg
from prometheus_client import Gauge
from psycopg_pool import AsyncConnectionPool
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.service_credentials import ServiceCredentials
from services.common.grpc_server import CHANNEL_OPTIONS
from services.common.rpc import reason_of
from services.webhooks import inbox, privacy
from services.webhooks.metrics import DEAD_LETTERED, DELIVERED, LAG, RETRIED

log = logging.getLogger(__name__)

# A claimed event and the request that delivers it.
_Item = tuple[inbox.ClaimedEvent, billing_pb2.ApplyStripeEventRequest]

SERVICE_NAME = "webhooks-relay"

# An event's own failures worth another attempt; any other status billing gives for one event is
# permanent and dead-letters it at once. A failed call is always retried.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

# The channel to billing: after an outage it reconnects within 5 s (gRPC's default backoff grows to
# 120 s, and calls fail at once until it reconnects), so that the relay sees billing back soon.
RELAY_CHANNEL_OPTIONS = [
    *CHANNEL_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 1_000),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]

# Payload bytes per ApplyStripeEvents call: billing accepts messages up to 4 MiB (and events are
# at most 1 MiB, the receiver's default limit), so a large batch is split into several calls.
MAX_CALL_PAYLOAD_BYTES = 3 * 1024 * 1024

_STATUS_CODES: Mapping[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}

OUTCOMES: Mapping[int, str] = {
    billing_pb2.ApplyStripeEventResponse.OUTCOME_APPLIED: "applied",
    billing_pb2.ApplyStripeEventResponse.OUTCOME_DUPLICATE: "duplicate",
    billing_pb2.ApplyStripeEventResponse.OUTCOME_STALE: "stale",
    billing_pb2.ApplyStripeEventResponse.OUTCOME_IGNORED: "ignored",
}


def _calls(items: list[_Item]) -> Iterator[list[_Item]]:
    """`items` in consecutive chunks whose payloads fit one call (one item always fits)."""
    chunk: list[_Item] = []
    size = 0
    for item in items:
        payload = len(item[1].payload)
        if chunk and size + payload > MAX_CALL_PAYLOAD_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += payload
    if chunk:
        yield chunk


def backoff_delay(attempts: int, *, base: float, cap: float) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped at `cap`."""
    delay = min(cap, base * 2.0**attempts)
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 (jitter, not security)


# How often the backlog gauges are refreshed: well inside Prometheus' usual scrape interval.
BACKLOG_INTERVAL_SECONDS = 5.0
# The relay's view of the inbox, refreshed by one indexed query (inbox.backlog); here rather than
# in services.webhooks.metrics, so that only the relay exports them (a gauge shows from creation).
BACKLOG = Gauge("webhooks_backlog_events", "Events stored and not yet delivered (pending)")
OLDEST_PENDING_AGE = Gauge(
    "webhooks_oldest_pending_age_seconds", "Age of the oldest pending event (0 when none)"
)
DEAD_LETTERS = Gauge(
    "webhooks_dead_letter_events", "Events given up on and not replayed (operators list them)"
)


class Relay:
    """Delivery batches over one connection pool and one channel to billing."""

    def __init__(
        self,
        *,
        database_url: str,
        billing: billing_pb2_grpc.BillingServiceStub,
        credentials: ServiceCredentials,
        batches: int,
        batch_size: int,
        max_attempts: int,
        backoff_base: float,
        backoff_max: float,
        poll_interval: float,
        delivery_timeout: float,
    ) -> None:
        self._database_url = database_url
        # Asynchronous commit for the relay's own writes (claims and delivery outcomes): a crash
        # can only forget that an event was delivered, and delivering it again is harmless
        # (billing applies an event id once). It saves a WAL flush per batch.
        self._pool = AsyncConnectionPool(
            database_url,
            min_size=1,
            max_size=batches,
            kwargs={"options": "-c synchronous_commit=off"},
            open=False,
        )
        self._billing = billing
        self._credentials = credentials
        self._batches = batches
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._poll_interval = poll_interval
        self._delivery_timeout = delivery_timeout
        # Wake-ups for idle batches: one per NOTIFY, and one more from a batch that came back
        # full (more may be due). Bounded, so a burst of NOTIFYs wakes each batch once at most,
        # and kept until taken, so one that arrives while every batch is busy is not lost.
        self._wakes: asyncio.Queue[None] = asyncio.Queue(maxsize=batches)
        # A call failed as a whole since held events were last released (and, at start, held
        # events may remain from an earlier run): the next answer from billing releases them.
        self._outage = True
        self._last_probe = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; batches under way are finished, not abandoned."""
        await self._pool.open(wait=True, timeout=30)
        helpers = [
            asyncio.create_task(self._listen(stop)),
            asyncio.create_task(self._measure_backlog(stop)),
        ]
        try:
            await asyncio.gather(*(self._work(stop) for _ in range(self._batches)))
        finally:
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            await self._pool.close()

    async def _measure_backlog(self, stop: asyncio.Event) -> None:
        """Keep the backlog gauges current (every `BACKLOG_INTERVAL_SECONDS`)."""
        while not stop.is_set():
            try:
                async with self._pool.connection() as conn:
                    pending, oldest, dead = await inbox.backlog(conn)
            except psycopg.Error:
                log.warning("could not measure the backlog", exc_info=True)
            else:
                BACKLOG.set(pending)
                OLDEST_PENDING_AGE.set(oldest)
                DEAD_LETTERS.set(dead)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), BACKLOG_INTERVAL_SECONDS)

    async def _listen(self, stop: asyncio.Event) -> None:
        """Wake the workers on every NOTIFY from the receiver (reconnecting after failures)."""
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._database_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {inbox.NOTIFY_CHANNEL}")
                    self._wake_one()  # catch up on anything stored while not listening
                    async for _ in conn.notifies():
                        self._wake_one()
            except psycopg.Error:
                log.warning("LISTEN connection lost; polling until it is back", exc_info=True)
                await asyncio.sleep(self._poll_interval)

    def _wake_one(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._wakes.put_nowait(None)

    async def _work(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                delivered = await self.deliver_batch()
            except (psycopg.Error, OSError):
                log.exception("delivery round failed; retrying shortly")
                delivered = 0
            if delivered == self._batch_size:
                self._wake_one()  # a full batch: more may be due, let an idle batch look too
            if delivered:
                continue
            await self._probe_if_in_outage()
            waiters = [asyncio.ensure_future(self._wakes.get()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=self._poll_interval, return_when="FIRST_COMPLETED")
            for waiter in waiters:
                waiter.cancel()

    async def deliver_batch(self) -> int:
        """Claim up to a batch of due events and deliver them; return how many (0: none due)."""
        async with self._pool.connection() as conn, conn.transaction():
            events = await inbox.claim_due(conn, limit=self._batch_size)
            if not events:
                return 0
            deliveries = await self._apply(events)
            lags = await inbox.record(conn, deliveries)
            await privacy.redact_erased(conn, events)
        # Flagged once the held events are committed, so that a release cannot miss them.
        if any(d.call_failed for d in deliveries):
            self._outage = True
        if not all(d.call_failed for d in deliveries):
            await self._billing_answered()
        for delivery in deliveries:
            if delivery.state == "delivered":
                DELIVERED.labels(delivery.outcome).inc()
        for lag in lags:
            LAG.observe(lag)
        return len(events)

    async def _probe_if_in_outage(self) -> None:
        """Idle during an outage: at most one empty call per poll interval asks billing whether
        it is back (no event spends an attempt on it)."""
        loop = asyncio.get_running_loop()
        if not self._outage or loop.time() - self._last_probe < self._poll_interval:
            return
        self._last_probe = loop.time()
        try:
            await self._billing.ApplyStripeEvents(
                billing_pb2.ApplyStripeEventsRequest(),
                timeout=self._delivery_timeout,
                metadata=self._credentials.metadata(None),
            )
        except grpc.aio.AioRpcError:
            return
        await self._billing_answered()

    async def _billing_answered(self) -> None:
        """Billing answered a call: after an outage, what it held back is due now."""
        if not self._outage:
            return
        self._outage = False
        try:
            async with self._pool.connection() as conn:
                released = await inbox.release_held(conn)
        except BaseException:
            self._outage = True  # released nothing: the next answer tries again
            raise
        if released:
            log.info(
                "billing answers again; held events are due", extra={"fields": {"keys": released}}
            )
            for _ in range(self._batches):
                self._wake_one()

    async def _apply(self, events: list[inbox.ClaimedEvent]) -> list[inbox.Delivery]:
        """ApplyStripeEvents for the batch (in calls that fit billing's message limit)."""
        requests = [
            billing_pb2.ApplyStripeEventRequest(
                event_id=event.id,
                type=event.type,
                payload=event.payload.encode(),
                provider=event.provider,
            )
            for event in events
        ]
        calls = await asyncio.gather(
            *(self._call(chunk) for chunk in _calls(list(zip(events, requests, strict=True))))
        )
        return [delivery for call in calls for delivery in call]

    async def _call(self, chunk: list[_Item]) -> list[inbox.Delivery]:
        """One ApplyStripeEvents call; each event's fate from its own result."""
        try:
            reply = await self._billing.ApplyStripeEvents(
                billing_pb2.ApplyStripeEventsRequest(events=[request for _, request in chunk]),
                timeout=self._delivery_timeout,
                metadata=self._credentials.metadata(None),
            )
        except grpc.aio.AioRpcError as e:
            # The call failed, not an event: whatever the status, each event is tried again
            # (until RELAY_MAX_ATTEMPTS), so a misdeployed billing parks nothing at once; held
            # back until billing answers again.
            return [
                replace(
                    self._failed(
                        event, e.code(), e.details() or "", reason=reason_of(e), retryable=True
                    ),
                    call_failed=True,
                )
                for event, _ in chunk
            ]
        results = {result.event_id: result for result in reply.results}
        deliveries = []
        for event, _ in chunk:
            result = results.get(event.id)
            if result is None:
                deliveries.append(
                    self._failed(
                        event, grpc.StatusCode.UNKNOWN, "billing returned no result", retryable=True
                    )
                )
            elif result.WhichOneof("result") == "error":
                code = _STATUS_CODES.get(result.error.code, grpc.StatusCode.UNKNOWN)
                deliveries.append(
                    self._failed(
                        event,
                        code,
                        result.error.message,
                        reason=result.error.reason or None,
                        retryable=code in RETRYABLE,
                    )
                )
            else:
                outcome = OUTCOMES.get(result.outcome, "applied")
                deliveries.append(inbox.Delivery(event.id, "delivered", outcome=outcome))
        return deliveries

    def _failed(
        self,
        event: inbox.ClaimedEvent,
        code: grpc.StatusCode,
        details: str,
        *,
        retryable: bool,
        reason: str | None = None,
    ) -> inbox.Delivery:
        """A retry after backoff, or the dead letter when permanent or out of attempts; the
        error kept is `CODE reason: details` (the reason when billing sent one)."""
        error = f"{code.name}{f' {reason}' if reason else ''}: {details}"[:2000]
        attempts = event.attempts + 1
        if retryable and attempts < self._max_attempts:
            delay = backoff_delay(attempts - 1, base=self._backoff_base, cap=self._backoff_max)
            RETRIED.labels(code.name).inc()
            log.info(
                "delivery failed; will retry",
                extra={
                    "fields": {
                        "event": event.id,
                        "attempts": attempts,
                        "delay_s": round(delay, 2),
                        "error": error,
                    }
                },
            )
            return inbox.Delivery(event.id, "pending", error=error, retry_in=delay)
        DEAD_LETTERED.labels(code.name).inc()
        log.warning(
            "event dead-lettered",
            extra={"fields": {"event": event.id, "attempts": attempts, "error": error}},
        )
        return inbox.Delivery(event.id, "dead", error=error)
