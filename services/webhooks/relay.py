"""The relay: claims due events and delivers them to billing's ApplyStripeEvent, with retries.

Several relays (and several workers in each) share the inbox: a claim is a row lock held for
the delivery (`FOR UPDATE SKIP LOCKED`), so no event is delivered by two at once, and a relay
that dies mid-delivery releases its events with its connection. Per Stripe customer, events go
one at a time in `created` order (see inbox._CLAIM). Woken at once by LISTEN/NOTIFY; polls too.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping

import grpc
import psycopg
from psycopg_pool import AsyncConnectionPool
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.service_credentials import ServiceCredentials
from services.webhooks import inbox
from services.webhooks.metrics import DEAD_LETTERED, DELIVERED, LAG, RETRIED

log = logging.getLogger(__name__)

SERVICE_NAME = "webhooks-relay"

# Failures worth another attempt; every other status is permanent and dead-letters at once.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

OUTCOMES: Mapping[int, str] = {
    billing_pb2.ApplyStripeEventResponse.OUTCOME_APPLIED: "applied",
    billing_pb2.ApplyStripeEventResponse.OUTCOME_DUPLICATE: "duplicate",
    billing_pb2.ApplyStripeEventResponse.OUTCOME_STALE: "stale",
    billing_pb2.ApplyStripeEventResponse.OUTCOME_IGNORED: "ignored",
}


def backoff_delay(attempts: int, *, base: float, cap: float) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped at `cap`."""
    delay = min(cap, base * 2**attempts)
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 (jitter, not security)


class Relay:
    """Delivery workers over one connection pool and one channel to billing."""

    def __init__(
        self,
        *,
        database_url: str,
        billing: billing_pb2_grpc.BillingServiceStub,
        credentials: ServiceCredentials,
        concurrency: int,
        max_attempts: int,
        backoff_base: float,
        backoff_max: float,
        poll_interval: float,
        delivery_timeout: float,
    ) -> None:
        self._database_url = database_url
        # Asynchronous commit for the relay's own writes (claims and delivery outcomes): a crash
        # can only forget that an event was delivered, and delivering it again is harmless
        # (billing applies an event id once). It saves a WAL flush per event.
        self._pool = AsyncConnectionPool(
            database_url,
            min_size=1,
            max_size=concurrency + 1,
            kwargs={"options": "-c synchronous_commit=off"},
            open=False,
        )
        self._billing = billing
        self._credentials = credentials
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._poll_interval = poll_interval
        self._delivery_timeout = delivery_timeout
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; deliveries under way are finished, not abandoned."""
        await self._pool.open(wait=True, timeout=30)
        listener = asyncio.create_task(self._listen(stop))
        try:
            await asyncio.gather(*(self._work(stop) for _ in range(self._concurrency)))
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self._pool.close()

    async def _listen(self, stop: asyncio.Event) -> None:
        """Wake the workers on every NOTIFY from the receiver (reconnecting after failures)."""
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._database_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {inbox.NOTIFY_CHANNEL}")
                    self._wake.set()  # catch up on anything stored while not listening
                    async for _ in conn.notifies():
                        self._wake.set()
            except psycopg.Error:
                log.warning("LISTEN connection lost; polling until it is back", exc_info=True)
                await asyncio.sleep(self._poll_interval)

    async def _work(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                delivered = await self.deliver_one()
            except (psycopg.Error, OSError):
                log.exception("delivery round failed; retrying shortly")
                delivered = False
            if delivered:
                continue
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=self._poll_interval, return_when="FIRST_COMPLETED")
            for waiter in waiters:
                waiter.cancel()
            self._wake.clear()

    async def deliver_one(self) -> bool:
        """Claim and deliver one due event; False when none is due."""
        async with self._pool.connection() as conn, conn.transaction():
            event = await inbox.claim_next(conn)
            if event is None:
                return False
            request = billing_pb2.ApplyStripeEventRequest(
                event_id=event.id, type=event.type, payload=event.payload.encode()
            )
            try:
                reply = await self._billing.ApplyStripeEvent(
                    request,
                    timeout=self._delivery_timeout,
                    metadata=self._credentials.metadata(None),
                )
            except grpc.aio.AioRpcError as e:
                await self._failed(conn, event, e.code(), e.details() or "")
                return True
            outcome = OUTCOMES.get(reply.outcome, "applied")
            lag = await inbox.mark_delivered(conn, event.id, outcome=outcome)
        DELIVERED.labels(outcome).inc()
        LAG.observe(lag)
        return True

    async def _failed(
        self,
        conn: psycopg.AsyncConnection,
        event: inbox.ClaimedEvent,
        code: grpc.StatusCode,
        details: str,
    ) -> None:
        error = f"{code.name}: {details}"[:2000]
        attempts = event.attempts + 1
        if code in RETRYABLE and attempts < self._max_attempts:
            delay = backoff_delay(attempts - 1, base=self._backoff_base, cap=self._backoff_max)
            await inbox.mark_retry(conn, event.id, delay=delay, error=error)
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
        else:
            await inbox.mark_dead(conn, event.id, error=error)
            DEAD_LETTERED.labels(code.name).inc()
            log.warning(
                "event dead-lettered",
                extra={"fields": {"event": event.id, "attempts": attempts, "error": error}},
            )
