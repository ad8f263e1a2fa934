"""The inbox in SQL: idempotent inserts, claims for delivery, delivery outcomes, operator queries.

Hot paths use psycopg directly (one statement per batch, no ORM): the receiver's throughput is
bounded by Python time per event, not by Postgres.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

from services.webhooks.stripe_events import InboundEvent

NOTIFY_CHANNEL = "webhooks_events"

_INSERT = """
INSERT INTO webhooks.events
    (id, type, created, api_version, livemode, object_id, customer_id, ordering_key, payload, source)
SELECT id, type, to_timestamp(created), api_version, livemode, object_id, customer_id,
       ordering_key, payload::jsonb, %(source)s
FROM unnest(%(ids)b::text[], %(types)b::text[], %(created)b::bigint[], %(api_versions)b::text[],
            %(livemodes)b::boolean[], %(object_ids)b::text[], %(customer_ids)b::text[],
            %(ordering_keys)b::text[], %(payloads)b::text[])
     AS e(id, type, created, api_version, livemode, object_id, customer_id, ordering_key, payload)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""


async def insert_events(
    conn: AsyncConnection, events: Sequence[InboundEvent], *, source: str
) -> set[str]:
    """Store `events` once each (one statement); return the ids that were new. Commits."""
    async with conn.transaction():
        cursor = await conn.execute(
            _INSERT,
            {
                "source": source,
                "ids": [e.id for e in events],
                "types": [e.type for e in events],
                "created": [e.created for e in events],
                "api_versions": [e.api_version for e in events],
                "livemodes": [e.livemode for e in events],
                "object_ids": [e.object_id for e in events],
                "customer_ids": [e.customer_id for e in events],
                "ordering_keys": [e.ordering_key for e in events],
                "payloads": [e.payload for e in events],
            },
        )
        inserted = {row[0] for row in await cursor.fetchall()}
        if inserted:
            await conn.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))
    return inserted


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    id: str
    type: str
    payload: str
    attempts: int


# Due, and the head of its ordering key (its oldest pending event): per customer, one at a time in
# created order, so a batch holds at most one event per key. The row locks (held for the delivery)
# keep other relays off them; a relay that dies mid-delivery loses its locks with its connection
# and the events are due again.
# The plan must not depend on statistics (the inbox is usually analysed with nothing pending, so
# Postgres believes both partial indexes empty and any plan cheap): the walk follows ix_events_due
# in claim order and stops after `limit` rows, and each candidate's head is one probe of
# ix_events_pending_order (LIMIT 1 in that index's order). CLAIM_PLAN_SETTINGS forbids sorts, the
# only way to serve either ORDER BY from another index or a scan, so no estimate can pick a plan
# that scans every pending event per candidate (a 20,000-event backlog: ~1,000 buffers, not
# millions).
CLAIM_PLAN_SETTINGS = "SET LOCAL enable_sort = off"
CLAIM_SQL = """
SELECT e.id, e.type, e.payload::text AS payload, e.attempts
FROM webhooks.events e
WHERE e.state = 'pending' AND e.next_attempt_at <= now() AND e.payload IS NOT NULL
  AND e.id = (
      SELECT p.id FROM webhooks.events p
      WHERE p.state = 'pending' AND p.ordering_key = e.ordering_key
      ORDER BY p.ordering_key, p.created, p.id
      LIMIT 1)
ORDER BY e.next_attempt_at, e.created
LIMIT %s
FOR UPDATE OF e SKIP LOCKED
"""


async def claim_due(conn: AsyncConnection, *, limit: int) -> list[ClaimedEvent]:
    """Lock up to `limit` deliverable events, at most one per ordering key; call inside the
    transaction that records their deliveries."""
    async with conn.cursor(row_factory=class_row(ClaimedEvent)) as cursor:
        await cursor.execute(CLAIM_PLAN_SETTINGS)
        await cursor.execute(CLAIM_SQL, (limit,))
        claimed = await cursor.fetchall()
        await cursor.execute("RESET enable_sort")
        return claimed


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one delivery attempt of a claimed event."""

    event_id: str
    state: str  # 'delivered'; 'pending' again, due after `retry_in` seconds; or 'dead'
    outcome: str | None = None  # billing's answer, when delivered
    error: str | None = None  # the last error, when not delivered
    retry_in: float | None = None


# One statement for a batch. Every attempt counts; a delivery stamps the moment it is recorded
# and clears the last error; a retry keeps what an earlier delivery recorded (replays).
_RECORD = """
UPDATE webhooks.events e
SET state = d.state,
    attempts = e.attempts + 1,
    outcome = coalesce(d.outcome, e.outcome),
    last_error = d.error,
    delivered_at = CASE WHEN d.state = 'delivered' THEN clock_timestamp() ELSE e.delivered_at END,
    next_attempt_at = CASE WHEN d.state = 'pending'
                           THEN now() + make_interval(secs => d.retry_in)
                           ELSE e.next_attempt_at END
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::float8[])
     AS d(id, state, outcome, error, retry_in)
WHERE e.id = d.id
RETURNING e.state, extract(epoch FROM e.delivered_at - e.received_at)::float8
"""


async def record(conn: AsyncConnection, deliveries: Sequence[Delivery]) -> list[float]:
    """Record the attempts; return the receive-to-applied lag (s) of each event delivered."""
    cursor = await conn.execute(
        _RECORD,
        (
            [d.event_id for d in deliveries],
            [d.state for d in deliveries],
            [d.outcome for d in deliveries],
            [d.error for d in deliveries],
            [d.retry_in for d in deliveries],
        ),
    )
    return [lag for state, lag in await cursor.fetchall() if state == "delivered"]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: str
    type: str
    created: datetime
    livemode: bool
    object_id: str | None
    customer_id: str | None
    source: str
    received_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    outcome: str | None
    payload: str | None


_COLUMNS = """id, type, created, livemode, object_id, customer_id, source, received_at, state,
              attempts, next_attempt_at, last_error, delivered_at, outcome"""


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Operator selection: any field left None does not filter."""

    type: str | None = None
    state: str | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None


def _where(selection: EventFilter) -> tuple[str, list[object]]:
    clauses: list[str] = ["TRUE"]
    params: list[object] = []
    for sql, value in (
        ("type = %s", selection.type),
        ("state = %s", selection.state),
        ("received_at >= %s", selection.received_after),
        ("received_at < %s", selection.received_before),
    ):
        if value is not None:
            clauses.append(sql)
            params.append(value)
    return " AND ".join(clauses), params


async def list_events(
    conn: AsyncConnection,
    selection: EventFilter,
    *,
    limit: int,
    before: tuple[datetime, str] | None,
) -> list[StoredEvent]:
    """Newest first; `before` (received_at, id) continues a previous page."""
    where, params = _where(selection)
    if before is not None:
        where += " AND (received_at, id) < (%s, %s)"
        params += list(before)
    async with conn.cursor(row_factory=class_row(StoredEvent)) as cursor:
        await cursor.execute(
            f"SELECT {_COLUMNS}, NULL::text AS payload FROM webhooks.events WHERE {where} "  # noqa: S608 (fixed fragments)
            "ORDER BY received_at DESC, id DESC LIMIT %s",
            [*params, limit],
        )
        return await cursor.fetchall()


async def get_event(conn: AsyncConnection, event_id: str) -> StoredEvent | None:
    """One event with its payload (None once retention dropped it)."""
    async with conn.cursor(row_factory=class_row(StoredEvent)) as cursor:
        await cursor.execute(
            f"SELECT {_COLUMNS}, payload::text AS payload FROM webhooks.events WHERE id = %s",  # noqa: S608
            (event_id,),
        )
        return await cursor.fetchone()


async def replay(
    conn: AsyncConnection, *, ids: Sequence[str] | None = None, selection: EventFilter | None = None
) -> list[str]:
    """Make the chosen events due now again (billing dedups by id); payload-less ones are skipped."""
    where: str
    params: list[object]
    if ids is not None:
        where, params = "id = ANY(%s)", [list(ids)]
    elif selection is not None:
        where, params = _where(selection)
    else:
        raise ValueError("replay needs ids or a selection")
    async with conn.transaction():
        cursor = await conn.execute(
            "UPDATE webhooks.events SET state = 'pending', next_attempt_at = now(), attempts = 0, "  # noqa: S608
            f"last_error = NULL WHERE {where} AND payload IS NOT NULL RETURNING id",
            params,
        )
        replayed = [row[0] for row in await cursor.fetchall()]
        if replayed:
            await conn.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))
    return replayed


async def drop_old_payloads(
    conn: AsyncConnection, *, older_than_days: int, batch: int = 1000
) -> int:
    """Drop payloads of events delivered more than `older_than_days` ago; keep the audit rows."""
    total = 0
    while True:
        async with conn.transaction():
            cursor = await conn.execute(
                """UPDATE webhooks.events SET payload = NULL, payload_dropped_at = now()
                   WHERE id IN (
                       SELECT id FROM webhooks.events
                       WHERE state = 'delivered' AND payload IS NOT NULL
                         AND delivered_at < now() - make_interval(days => %s)
                       LIMIT %s FOR UPDATE SKIP LOCKED)""",
                (older_than_days, batch),
            )
        total += cursor.rowcount
        if cursor.rowcount < batch:
            return total


async def read_cursor(conn: AsyncConnection, name: str) -> datetime | None:
    cursor = await conn.execute("SELECT created FROM webhooks.cursors WHERE name = %s", (name,))
    row = await cursor.fetchone()
    return row[0] if row else None


async def write_cursor(conn: AsyncConnection, name: str, created: datetime) -> None:
    """Advance the named cursor (never backwards)."""
    await conn.execute(
        """INSERT INTO webhooks.cursors (name, created) VALUES (%s, %s)
           ON CONFLICT (name) DO UPDATE
           SET created = greatest(webhooks.cursors.created, excluded.created), updated_at = now()""",
        (name, created),
    )
