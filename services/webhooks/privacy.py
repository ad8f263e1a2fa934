"""The inbox and requests about one person: every event about a subject (an export), and an
erasure that blanks personal data from their payloads (services/common/personal_data.py),
keeping ids, amounts and dates.

A subject is an ordering key: a Stripe customer id (or a Stripe object id, for events about an
object with no customer, such as a detached payment method), or `clerk:<user or org id>`. An
erasure records its keys in `webhooks.erased_keys` first, then blanks the stored payloads; the
relay blanks those of events about an erased key delivered afterwards (`redact_erased`), such as
the `customer.deleted` that the erasure itself makes Stripe send.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import class_row

from services.common.errors import ErrorReason, ServiceError
from services.common.personal_data import redacted_json
from services.webhooks.inbox import ClaimedEvent

# How long an erasure waits for an event being delivered (its row is locked by a relay batch)
# before giving up; the caller tries again later.
LOCK_TIMEOUT = "2s"


@dataclass(frozen=True, slots=True)
class SubjectEvent:
    id: str
    provider: str
    type: str
    created: datetime
    received_at: datetime
    state: str
    payload: str | None


async def subject_events(conn: AsyncConnection, keys: Sequence[str]) -> list[SubjectEvent]:
    """Every event about `keys`, oldest first, with its payload (None once dropped)."""
    async with conn.cursor(row_factory=class_row(SubjectEvent)) as cursor:
        await cursor.execute(
            "SELECT id, provider, type, created, received_at, state, payload::text AS payload"
            " FROM webhooks.events WHERE ordering_key = ANY(%s) ORDER BY created, id",
            (list(keys),),
        )
        return await cursor.fetchall()


def _changes(rows: Sequence[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """Of `rows` (id, payload), those holding personal data, with their blanked payloads."""
    return [(event_id, new) for event_id, text in rows if text and (new := redacted_json(text))]


async def _write(conn: AsyncConnection, changes: Sequence[tuple[str, str]]) -> int:
    """Store the blanked payloads. Payloads change only here and when retention drops them
    (then null: left alone)."""
    cursor = await conn.execute(
        "UPDATE webhooks.events e SET payload = c.payload::jsonb"
        " FROM unnest(%s::text[], %s::text[]) AS c(id, payload)"
        " WHERE e.id = c.id AND e.payload IS NOT NULL",
        ([event_id for event_id, _ in changes], [new for _, new in changes]),
    )
    return cursor.rowcount


async def erase_subjects(conn: AsyncConnection, keys: Sequence[str]) -> int:
    """Record `keys` as erased, then blank personal data from their stored events; return how
    many payloads changed. Safe to repeat (a second run changes nothing)."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO webhooks.erased_keys (ordering_key) SELECT unnest(%s::text[])"
            " ON CONFLICT (ordering_key) DO NOTHING",
            (list(keys),),
        )
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor = await conn.execute(
                "SELECT id, payload::text FROM webhooks.events"
                " WHERE ordering_key = ANY(%s) AND payload IS NOT NULL",
                (list(keys),),
            )
            changes = _changes(await cursor.fetchall())
            return await _write(conn, changes) if changes else 0
    except psycopg.errors.LockNotAvailable as e:
        raise ServiceError(
            "some of these events are being delivered; try again",
            reason=ErrorReason.DATABASE_UNAVAILABLE,
        ) from e


async def redact_erased(conn: AsyncConnection, events: Sequence[ClaimedEvent]) -> int:
    """The relay, after delivering `events`: blank those about an erased subject. One probe of
    `erased_keys` per batch; inside the batch's transaction, which holds their rows."""
    cursor = await conn.execute(
        "SELECT ordering_key FROM webhooks.erased_keys WHERE ordering_key = ANY(%s)",
        (sorted({event.ordering_key for event in events}),),
    )
    erased = {row[0] for row in await cursor.fetchall()}
    if not erased:
        return 0
    changes = _changes([(e.id, e.payload) for e in events if e.ordering_key in erased])
    return await _write(conn, changes) if changes else 0
