"""The usage sender: a loop inside each billing server that claims pending usage records with
`FOR UPDATE SKIP LOCKED` (so replicas never hold the same record), sends each to Stripe's meter
events API under the record's own identifier, and marks it `sent`; what fails for a while
(Stripe unreachable, rate limited, 5xx) is retried with exponential backoff, what Stripe refuses
for good (a 400, e.g. a timestamp too old by then) is marked `failed` and no longer counted.

What is guaranteed (README, "Usage-based prices"): a record is sent until Stripe has it; it is
counted by Stripe at most once, because every send of it carries the same meter event
identifier (Stripe keeps one event per identifier for at least 24 hours; an answer that Stripe
already has it counts as sent). A sender that dies mid-batch releases its row locks with its connection; another
takes the rows and sends them again under the same identifiers."""

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

import stripe
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing.usage import metrics
from services.billing.usage.tables import meters, usage_records

log = logging.getLogger(__name__)

# How often the backlog gauge is read.
_BACKLOG_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class UsageSending:
    """How the sender works (BILLING_USAGE_* settings)."""

    batch_size: int = 100
    concurrency: int = 8
    poll_seconds: float = 1.0
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0


class _Fate(StrEnum):
    SENT = "sent"
    ALREADY_KNOWN = "already_known"
    RETRY = "retry"
    FAILED = "failed"


class _Claimed(NamedTuple):
    """A row of `_CLAIM`."""

    id: int
    identifier: str
    stripe_customer_id: str
    event_name: str
    value: int
    occurred_at: datetime
    attempts: int
    customer_payload_key: str
    value_payload_key: str


_CLAIM = (
    select(
        usage_records.c.id,
        usage_records.c.identifier,
        usage_records.c.stripe_customer_id,
        usage_records.c.event_name,
        usage_records.c.value,
        usage_records.c.occurred_at,
        usage_records.c.attempts,
        meters.c.customer_payload_key,
        meters.c.value_payload_key,
    )
    .join(meters, meters.c.id == usage_records.c.meter_id)
    .where(usage_records.c.state == "pending", usage_records.c.next_attempt_at <= func.now())
    .order_by(usage_records.c.next_attempt_at, usage_records.c.id)
    .with_for_update(of=usage_records, skip_locked=True)
)


class UsageSender:
    def __init__(
        self, *, engine: AsyncEngine, stripe_client: stripe.StripeClient, config: UsageSending
    ) -> None:
        self._engine = engine
        self._stripe = stripe_client
        self._config = config
        self._slots = asyncio.Semaphore(config.concurrency)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; the batch under way is finished, not abandoned."""
        loop = asyncio.get_running_loop()
        measured = 0.0
        while not stop.is_set():
            try:
                handled = await self.send_due()
                if loop.time() - measured >= _BACKLOG_SECONDS:
                    measured = loop.time()
                    await self.measure_backlog()
            except Exception:  # the database away: logged, tried again after a pause
                log.exception("usage sender round failed")
                handled = 0
            if handled < self._config.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._config.poll_seconds)

    async def send_due(self) -> int:
        """Claim one batch of due records, send each, record the outcomes; how many claimed."""
        async with self._engine.begin() as conn:
            rows = await conn.execute(_CLAIM.limit(self._config.batch_size))
            claimed = [_Claimed(*row) for row in rows]
            if not claimed:
                return 0
            fates = await asyncio.gather(*(self._send(row) for row in claimed))
            await self._settle(conn, list(zip(claimed, fates, strict=True)))
        return len(claimed)

    async def _send(self, row: _Claimed) -> tuple[_Fate, str | None]:
        params: dict[str, object] = {
            "event_name": row.event_name,
            "identifier": row.identifier,
            "timestamp": int(row.occurred_at.timestamp()),
            "payload": {
                row.customer_payload_key: row.stripe_customer_id,
                row.value_payload_key: str(row.value),
            },
        }
        async with self._slots:
            try:
                # No idempotency key of ours: Stripe would replay a stored 5xx for 24 hours; the
                # identifier is what makes a repeated event count once.
                await self._stripe.v1.billing.meter_events.create_async(
                    params=params  # type: ignore[arg-type]
                )
            except stripe.InvalidRequestError as e:
                if e.param == "identifier":  # Stripe already has this identifier's event
                    return _Fate.ALREADY_KNOWN, None
                return _Fate.FAILED, f"{e.http_status} {e.code or ''}: {e.user_message}"[:500]
            except stripe.StripeError as e:  # rate limited, unreachable, 5xx: try again later
                return _Fate.RETRY, f"{type(e).__name__}: {e.user_message}"[:500]
        return _Fate.SENT, None

    async def _settle(
        self, conn: AsyncConnection, outcomes: list[tuple[_Claimed, tuple[_Fate, str | None]]]
    ) -> None:
        done = [row.id for row, (fate, _) in outcomes if fate in (_Fate.SENT, _Fate.ALREADY_KNOWN)]
        if done:
            await conn.execute(
                update(usage_records)
                .where(usage_records.c.id.in_(done))
                .values(state="sent", sent_at=func.now(), attempts=usage_records.c.attempts + 1)
            )
        retried: dict[str, list[int]] = defaultdict(list)
        failed: dict[str, list[int]] = defaultdict(list)
        for row, (fate, error) in outcomes:
            if fate == _Fate.RETRY:
                retried[error or ""].append(row.id)
                continue
            metrics.SENT.labels(fate.value).inc()
            if fate == _Fate.FAILED:
                failed[error or ""].append(row.id)
                log.warning(
                    "Stripe refused a usage record",
                    extra={"fields": {"identifier": row.identifier, "error": error}},
                )
        delay = func.least(
            self._config.backoff_max_seconds,
            self._config.backoff_base_seconds * func.power(2, usage_records.c.attempts),
        )
        for error, ids in retried.items():
            metrics.RETRIED.inc(len(ids))
            await conn.execute(
                update(usage_records)
                .where(usage_records.c.id.in_(ids))
                .values(
                    attempts=usage_records.c.attempts + 1,
                    next_attempt_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, delay),
                    last_error=error,
                )
            )
        for error, ids in failed.items():
            await conn.execute(
                update(usage_records)
                .where(usage_records.c.id.in_(ids))
                .values(state="failed", attempts=usage_records.c.attempts + 1, last_error=error)
            )
        if retried:
            log.info(
                "usage records to send again",
                extra={"fields": {"count": sum(map(len, retried.values()))}},
            )

    async def measure_backlog(self) -> None:
        async with self._engine.connect() as conn:
            pending = await conn.scalar(
                select(func.count())
                .select_from(usage_records)
                .where(usage_records.c.state == "pending")
            )
        metrics.BACKLOG.set(pending or 0)


async def start_sender(
    *, engine: AsyncEngine, stripe_client: stripe.StripeClient, config: UsageSending
) -> "RunningSender":
    """Run a sender in the background of this process until `RunningSender.stop`."""
    stop = asyncio.Event()
    sender = UsageSender(engine=engine, stripe_client=stripe_client, config=config)
    task = asyncio.create_task(sender.run(stop), name="usage-sender")
    return RunningSender(stop, task)


@dataclass(frozen=True, slots=True)
class RunningSender:
    _stop: asyncio.Event
    _task: "asyncio.Task[None]"

    async def stop(self) -> None:
        """Let the batch under way finish, then end."""
        self._stop.set()
        await self._task
