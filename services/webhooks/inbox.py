"""The inbox in SQL: idempotent inserts, claims for delivery, delivery outcomes, operator queries.

Hot paths use psycopg directly (one statement per batch, no ORM): the receiver's throughput is
bounded by Python time per event, not by Postgres.

The head-of-line table `webhooks.heads` keeps one row per ordering key (a Stripe customer) with
pending events: its head (the oldest pending event, by `created` then id), when that head is due
(`due_at`, a copy of its `next_attempt_at`) and whether it is held back by an outage of billing
(`held`: its last attempt was a call that failed as a whole). The relay claims from it, so a claim
reads only heads that are due: events waiting behind a head (in backoff or in flight) are never
read, however many (see CLAIM_SQL). Every change to a key's pending events keeps its row exact,
under that row's lock:
- an insert (receiver, backstop) or a replay adds pending events: the same statement merges them
  in (`_MERGE_HEADS`), the older of the stored head and the newest arrivals' oldest winning;
- the relay's record (`record`) first locks the rows of its batch's keys, then, in a later
  statement (so its snapshot sees every event committed before the locks were granted), sets each
  key's head from its pending events again, or deletes the row when none is left.
Any writer that adds pending events takes the row's lock before it commits, so the relay's
recomputation can only miss events whose writer is still waiting for that lock, and that writer
merges them in after it. No foreign key to `events`: its KEY SHARE lock would make an insert
wait for an event in flight.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

from services.webhooks.stripe_events import InboundEvent

NOTIFY_CHANNEL = "webhooks_events"

# New pending events (`added`: id, ordering_key, created, next_attempt_at) into the head-of-line
# table: per key, the oldest of them becomes the head unless the stored head is older. Rows are
# locked in key order, as every other writer of heads does, so writers cannot deadlock. A head
# replayed (the same event) gets its new due time.
_MERGE_HEADS = """
merged AS (
    INSERT INTO webhooks.heads AS h (ordering_key, event_id, created, due_at)
    SELECT DISTINCT ON (ordering_key) ordering_key, id, created, next_attempt_at
    FROM added ORDER BY ordering_key, created, id
    ON CONFLICT (ordering_key) DO UPDATE
    SET event_id = excluded.event_id, created = excluded.created, due_at = excluded.due_at,
        held = false
    WHERE (excluded.created, excluded.event_id) <= (h.created, h.event_id))
"""

_INSERT = (
    """
WITH added AS (
INSERT INTO webhooks.events
    (id, type, created, api_version, livemode, object_id, customer_id, ordering_key, payload, source,
     provider)
SELECT id, type, to_timestamp(created), api_version, livemode, object_id, customer_id,
       ordering_key, payload::jsonb, %(source)s, provider
FROM unnest(%(ids)b::text[], %(types)b::text[], %(created)b::bigint[], %(api_versions)b::text[],
            %(livemodes)b::boolean[], %(object_ids)b::text[], %(customer_ids)b::text[],
            %(ordering_keys)b::text[], %(payloads)b::text[], %(providers)b::text[])
     AS e(id, type, created, api_version, livemode, object_id, customer_id, ordering_key, payload,
          provider)
ON CONFLICT (id) DO NOTHING
RETURNING id, ordering_key, created, next_attempt_at),
"""
    + _MERGE_HEADS
    + """
SELECT id FROM added
"""
)


async def insert_events(
    conn: AsyncConnection, events: Sequence[InboundEvent], *, source: str
) -> set[str]:
    """Store `events` once each and merge them into their keys' heads (one statement); return the
    ids that were new. Commits."""
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
                "providers": [e.provider for e in events],
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
    provider: str
    ordering_key: str


# The heads that are due, in due order, each key's one deliverable event: per customer, one at a
# time in created order, so a batch holds at most one event per key. The row locks on the events
# (held for the delivery) keep other relays off them; a relay that dies mid-delivery loses its
# locks with its connection and the events are due again. The walk follows ix_heads_due_at and
# reads each head's event by primary key: it reads the due heads it returns plus the ones in flight
# (skipped), never an event waiting behind a head, so a claim costs O(batch + events in flight)
# whatever the backlog's shape: 20,000 pending behind heads in backoff cost nothing.
# CLAIM_PLAN_SETTINGS holds for the relay's whole transaction (SET LOCAL): no sort, hash or merge
# join, materialisation or sequential scan (each head's event is one primary-key probe), so no
# estimate (the inbox is usually analysed with nothing pending) can pick a plan that reads every
# head or every event; the record's statements follow the same indexes. The head's event is read
# in a lateral subquery fenced by OFFSET 0, which keeps the `state = 'pending'` condition out of
# it: while the statistics say that nothing is pending, a scan of ix_events_state_received or
# ix_events_pending_order per head would look as cheap as the primary-key probe and read every
# pending event (tests/integration/test_webhooks_claim_cost.py, "heads only, during the outage").
CLAIM_PLAN_SETTINGS = (
    "SET LOCAL enable_sort = off; SET LOCAL enable_hashjoin = off; "
    "SET LOCAL enable_mergejoin = off; SET LOCAL enable_material = off; "
    "SET LOCAL enable_seqscan = off"
)
CLAIM_SQL = """
SELECT e.id, e.type, e.payload::text AS payload, e.attempts, e.provider, e.ordering_key
FROM webhooks.heads h
CROSS JOIN LATERAL (
    SELECT id, type, payload, attempts, provider, ordering_key, state
    FROM webhooks.events WHERE id = h.event_id
    OFFSET 0) e
WHERE h.due_at <= now() AND e.state = 'pending' AND e.payload IS NOT NULL
ORDER BY h.due_at
LIMIT %s
FOR UPDATE OF e SKIP LOCKED
"""


async def claim_due(conn: AsyncConnection, *, limit: int) -> list[ClaimedEvent]:
    """Lock up to `limit` deliverable events, at most one per ordering key; call inside the
    transaction that records their deliveries (the plan settings last until its end)."""
    async with conn.cursor(row_factory=class_row(ClaimedEvent)) as cursor:
        await cursor.execute(CLAIM_PLAN_SETTINGS)
        await cursor.execute(CLAIM_SQL, (limit,))
        return await cursor.fetchall()


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one delivery attempt of a claimed event."""

    event_id: str
    state: str  # 'delivered'; 'pending' again, due after `retry_in` seconds; or 'dead'
    outcome: str | None = None  # billing's answer, when delivered
    error: str | None = None  # the last error, when not delivered
    retry_in: float | None = None
    call_failed: bool = False  # pending because the call failed as a whole (billing unreachable)


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
RETURNING e.state, extract(epoch FROM e.delivered_at - e.received_at)::float8, e.ordering_key
"""


# After the attempts: the head rows of the batch's keys, locked in key order.
_LOCK_HEADS = """
SELECT ordering_key FROM webhooks.heads WHERE ordering_key = ANY(%s)
ORDER BY ordering_key FOR UPDATE
"""

# Then, in a later statement (its snapshot sees every writer that held one of those locks): each
# key's head again from its pending events (one probe of ix_events_pending_order), held when it is
# an event whose call just failed; no pending event left: no row.
_RECOMPUTE_HEADS = """
WITH next AS (
    SELECT k.ordering_key, p.id, p.created, p.next_attempt_at, p.id = ANY(%(held)s) AS held
    FROM unnest(%(keys)s::text[]) AS k(ordering_key)
    CROSS JOIN LATERAL (
        SELECT id, created, next_attempt_at FROM webhooks.events
        WHERE state = 'pending' AND ordering_key = k.ordering_key
        ORDER BY ordering_key, created, id
        LIMIT 1) p),
emptied AS (
    DELETE FROM webhooks.heads h
    WHERE h.ordering_key = ANY(%(keys)s)
      AND NOT EXISTS (SELECT FROM next WHERE next.ordering_key = h.ordering_key))
INSERT INTO webhooks.heads AS h (ordering_key, event_id, created, due_at, held)
SELECT ordering_key, id, created, next_attempt_at, held FROM next ORDER BY ordering_key
ON CONFLICT (ordering_key) DO UPDATE
SET event_id = excluded.event_id, created = excluded.created, due_at = excluded.due_at,
    held = excluded.held
"""


async def record(conn: AsyncConnection, deliveries: Sequence[Delivery]) -> list[float]:
    """Record the attempts and move their keys' heads on; return the receive-to-applied lag (s)
    of each event delivered. Call inside the transaction that claimed them (its plan settings keep
    every statement here on the primary keys and ix_events_pending_order)."""
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
    recorded = await cursor.fetchall()
    await recompute_heads(
        conn,
        {key for _, _, key in recorded},
        held=[d.event_id for d in deliveries if d.call_failed],
    )
    return [lag for state, lag, _ in recorded if state == "delivered"]


async def recompute_heads(
    conn: AsyncConnection, keys: Iterable[str], *, held: Sequence[str] = ()
) -> None:
    """Point each of `keys`' head at its oldest pending event (held when among `held`), or drop
    it when none is pending: after events of those keys changed state. Inside a transaction."""
    ordered = sorted(keys)
    await conn.execute(_LOCK_HEADS, (ordered,))
    await conn.execute(_RECOMPUTE_HEADS, {"keys": ordered, "held": list(held)})


# Billing answers again: heads held back by its outage are due now (heads and their events).
# SKIP LOCKED, so it never waits (a head being recorded or merged keeps its own due time); never
# in flight: a held head that is not yet due cannot have been claimed.
_RELEASE_HELD = """
WITH released AS (
    SELECT h.ordering_key, h.event_id FROM webhooks.heads h
    JOIN webhooks.events e ON e.id = h.event_id
    WHERE h.held AND h.due_at > now()
    ORDER BY h.ordering_key
    FOR UPDATE OF h, e SKIP LOCKED),
due AS (
    UPDATE webhooks.events e SET next_attempt_at = now()
    FROM released WHERE e.id = released.event_id)
UPDATE webhooks.heads h SET due_at = now(), held = false
FROM released WHERE h.ordering_key = released.ordering_key
"""


async def release_held(conn: AsyncConnection) -> int:
    """Make every head held back by an outage of billing due now; return how many. Commits."""
    async with conn.transaction():
        cursor = await conn.execute(_RELEASE_HELD)
        if cursor.rowcount:
            await conn.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))
    return cursor.rowcount


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
    """Make the chosen events pending and due now again, as their keys' heads when oldest
    (billing dedups by id); payload-less ones are skipped."""
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
            "WITH added AS (UPDATE webhooks.events SET state = 'pending', next_attempt_at = now(), "  # noqa: S608 (fixed fragments)
            f"attempts = 0, last_error = NULL WHERE {where} AND payload IS NOT NULL "
            f"RETURNING id, ordering_key, created, next_attempt_at), {_MERGE_HEADS} "
            "SELECT id FROM added",
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


_BACKLOG = """
SELECT (SELECT count(*) FROM webhooks.events WHERE state = 'pending'),
       (SELECT coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8
        FROM webhooks.events WHERE state = 'pending'),
       (SELECT count(*) FROM webhooks.events WHERE state = 'dead')
"""


async def backlog(conn: AsyncConnection) -> tuple[int, float, int]:
    """Pending events, the oldest one's age in seconds (0 when none), dead-lettered events: index
    scans of (state, received_at)."""
    row = await (await conn.execute(_BACKLOG)).fetchone()
    assert row is not None  # one row, always
    return int(row[0]), float(row[1]), int(row[2])
