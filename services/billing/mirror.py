"""The mirror of Stripe objects and the one rule by which events write to it (`apply_object`).

Stripe delivers events late, twice and out of order, and stamps them with `created` in whole
seconds. Each mirrored row therefore remembers the `created` of the newest event written to it
(`source_event_created`) and whether it holds state fetched from Stripe rather than an event's
object (`refetched`). Row builders read Stripe objects as plain dicts (`json.loads` of the
payload, or `StripeObject.to_dict()`); a wrong type raises TypeError, a missing field KeyError.
"""

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, TypeVar

import stripe
from sqlalchemy import Column, Table, func, select, text
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.stripe_errors import retrieve_or_none

Row = dict[str, Any]
T = TypeVar("T")

# 9999-12-31T23:59:59Z: the last second a timestamptz column (and Python) can hold comfortably.
_MAX_UNIX_TIME = 253_402_300_799


class Outcome(StrEnum):
    """What applying one Stripe event did."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"


def integer(value: object) -> int:
    """A JSON integer (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def string(value: object) -> str:
    """A JSON string."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def boolean(value: object) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def mapping(value: object) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def unix_time(value: object) -> datetime:
    """A Stripe timestamp (Unix seconds) as a UTC datetime."""
    seconds = integer(value)
    if not 0 <= seconds <= _MAX_UNIX_TIME:
        raise ValueError(f"timestamp {seconds} is out of range")
    return datetime.fromtimestamp(seconds, UTC)


def reference(value: object) -> str:
    """The id in a reference to another Stripe object: the id itself, or the expanded object."""
    return string(mapping(value)["id"] if isinstance(value, dict) else value)


def optional(read: Callable[[object], T], value: object) -> T | None:
    """`read(value)`, or None where Stripe sent null or nothing."""
    return None if value is None else read(value)


def string_map(value: object) -> dict[str, str]:
    """Stripe metadata: string keys to string values (null or absent is empty)."""
    return {key: string(item) for key, item in mapping(value or {}).items()}


def everything(_obj: dict[str, Any]) -> bool:
    """Every object of a mirror's type is mirrored (a `Mirror.wanted`)."""
    return True


def unchanged(row: Row, _deleted_at: datetime) -> Row:
    """The row of an object Stripe deleted, for objects whose row says nothing of deletion
    (a `Mirror.retire`, which is given the time of the deletion)."""
    return row


@functools.cache
def _upsert_statement(table: Table, columns: tuple[str, ...], touched: str) -> Insert:
    """`INSERT … ON CONFLICT (key) DO UPDATE` of these columns, built once per shape (building
    one costs far more than executing it); `touched` takes its server default on insert."""
    stmt = insert(table)
    keys = [column.name for column in table.primary_key]
    changed: dict[str, Any] = {name: stmt.excluded[name] for name in columns if name not in keys}
    changed[touched] = func.now()
    return stmt.on_conflict_do_update(index_elements=keys, set_=changed)


async def upsert(conn: AsyncConnection, rows: list[Row], *, table: Table, touched: str) -> None:
    """Insert each of `rows` (of one set of columns), or overwrite the row with its key, in one
    statement executed for them all; column `touched` records when."""
    if rows:
        await conn.execute(_upsert_statement(table, tuple(rows[0]), touched), rows)


@dataclass(frozen=True, slots=True)
class Mirror:
    """How one kind of Stripe object is mirrored: its table, its row, how to fetch it again."""

    object_type: str  # Stripe's `object` field, e.g. "subscription"
    table: Table
    key: Column[Any]  # the column holding the Stripe id
    row: Callable[[dict[str, Any]], Row]
    service: Callable[[stripe.StripeClient], Any]  # e.g. attrgetter("v1.subscriptions")
    # Writes rows of distinct objects, in order (as few statements as it can).
    write: Callable[[AsyncConnection, list[Row]], Awaitable[None]]
    # The row once Stripe deleted the object (given the row it had and when).
    retire: Callable[[Row, datetime], Row] = unchanged
    # False where rows are created elsewhere and events only refresh them (customers).
    adds_rows: bool = True
    # Which objects of the type are mirrored (payment intents: only purchases); events carrying
    # another are recorded as IGNORED.
    wanted: Callable[[dict[str, Any]], bool] = everything
    # Includable fields the row needs: fetched with the object (`expand[]`). Stripe leaves them
    # out of events' objects, so each event of such a mirror is a signal to fetch (FETCH).
    expand: tuple[str, ...] = ()

    async def current(self, stripe_client: stripe.StripeClient, object_id: str) -> Row | None:
        """Stripe's object as it is now, as a dict; None when Stripe no longer has it."""
        expand = {"expand": list(self.expand)} if self.expand else {}
        found = await retrieve_or_none(
            self.service(stripe_client).retrieve_async,
            object_id,
            action=f"retrieve {self.object_type} {object_id}",
            **expand,
        )
        obj = None if found is None else found.to_dict()
        return None if obj is None or obj.get("deleted") else obj


class Ruling(StrEnum):
    """What `apply_object`'s rule makes of an event's row, given the stored version."""

    WRITE = "write"  # write the event's row
    FETCH = "fetch"  # fetch the object from Stripe and write that
    STALE = "stale"  # the mirror is newer: change nothing
    IGNORE = "ignore"  # no row, and this mirror's rows are made elsewhere


@dataclass(frozen=True, slots=True)
class Version:
    """What a mirrored row says of the state it holds."""

    created: datetime | None  # `source_event_created`: Stripe's time of that state
    refetched: bool  # whether it was fetched (maybe newer than `created`)


def ruling(
    stored: Version | None, *, mirror: Mirror, created: datetime, refetched: bool = False
) -> Ruling:
    """The rule (see `apply_object`) for a row as of an event `created`, given the stored one."""
    if stored is None and not mirror.adds_rows:
        return Ruling.IGNORE
    if stored is not None and stored.created is not None and created < stored.created:
        return Ruling.STALE
    if mirror.expand and not refetched:  # the event's object lacks what the row needs
        return Ruling.FETCH
    if stored is None:
        return Ruling.WRITE
    if (stored.refetched and not refetched) or created == stored.created:
        return Ruling.FETCH
    return Ruling.WRITE


async def _versions(
    conn: AsyncConnection, mirror: Mirror, object_ids: list[str]
) -> dict[str, Version]:
    rows = await conn.execute(
        select(mirror.key, mirror.table.c.source_event_created, mirror.table.c.refetched)
        .where(mirror.key.in_(object_ids))
        .order_by(mirror.key)
        .with_for_update()
    )
    return {key: Version(created, refetched) for key, created, refetched in rows}


async def locked_versions(
    conn: AsyncConnection, mirror: Mirror, object_ids: Iterable[str]
) -> dict[str, Version]:
    """The stored versions of these objects, each held until commit against every other writer.

    Rows that exist are locked (`FOR UPDATE`, in key order). An object with no row yet, where
    this mirror adds rows, is held by a transaction-scoped advisory lock on its key (taken in key
    order, so that two batches cannot deadlock on them), then looked up again: a first writer may
    have inserted it meanwhile.
    """
    ids = sorted(set(object_ids))
    found = await _versions(conn, mirror, ids)
    missing = [object_id for object_id in ids if object_id not in found]
    if missing and mirror.adds_rows:
        await conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0))"
                " FROM unnest(CAST(:keys AS text[])) AS k"
            ),
            {"keys": [f"{mirror.table.fullname}:{object_id}" for object_id in missing]},
        )
        found |= await _versions(conn, mirror, missing)
    return found


async def lock_objects(
    conn: AsyncConnection, objects: Iterable[tuple[Mirror, str]]
) -> dict[str, dict[str, Version]]:
    """The stored versions of these objects (each a mirror and a Stripe id), by table, each held
    until commit (`locked_versions`).

    Every writer that holds more than one object takes them here, in one order: a table at a
    time by name, each table's keys in order. Two such writers (a batch of events, the catalog
    sync, a resync page) then wait for each other and never deadlock."""
    mirrors: dict[str, Mirror] = {}
    keys: dict[str, list[str]] = {}
    for mirror, object_id in objects:
        mirrors[mirror.table.fullname] = mirror
        keys.setdefault(mirror.table.fullname, []).append(object_id)
    return {
        table: await locked_versions(conn, mirrors[table], keys[table]) for table in sorted(keys)
    }


def versioned(row: Row, *, created: datetime, refetched: bool) -> Row:
    """`row` to be written as the object's state as of `created` (fetched when `refetched`)."""
    return {**row, "source_event_created": created, "refetched": refetched}


async def apply_object(
    conn: AsyncConnection,
    *,
    mirror: Mirror,
    stripe_client: stripe.StripeClient,
    row: Row,
    created: datetime,
    refetched: bool = False,
) -> Outcome:
    """Write `row`, an object's state as of an event `created`, unless the mirror is newer.

    With V the row's `source_event_created` (the rule is `ruling`'s):
    - no row: insert `row` (where the mirror adds rows; otherwise IGNORED);
    - an event's `row` of a mirror that needs includable fields (`Mirror.expand`), unless
      `created` < V: fetch the object from Stripe and write that;
    - `created` < V: STALE, nothing changes;
    - `created` > V and the row holds an event's object: write `row`;
    - `created` == V (same second, order unknown), or the row holds fetched state (which may
      already include changes after `created`) and `row` is an event's: fetch the object from
      Stripe and write that.
    V becomes `created`. The row is marked `refetched` when what is written may be newer than
    `created`: fetched state that differs from the event's object, or `refetched=True` given
    (a `row` fetched by the caller, at least as new as any fetched state stored before it).
    Stripe's clock alone orders events; ours is never used. The object is held against every
    other writer until commit (`locked_versions`).
    """
    object_id = row[mirror.key.name]
    stored = (await locked_versions(conn, mirror, [object_id])).get(object_id)
    match ruling(stored, mirror=mirror, created=created, refetched=refetched):
        case Ruling.IGNORE:
            return Outcome.IGNORED
        case Ruling.STALE:
            return Outcome.STALE
        case Ruling.FETCH:
            current = await mirror.current(stripe_client, object_id)
            fetched = mirror.retire(row, created) if current is None else mirror.row(current)
            refetched = refetched or fetched != row
            row = fetched
    await mirror.write(conn, [versioned(row, created=created, refetched=refetched)])
    return Outcome.APPLIED


def answered_at(answer: stripe.StripeObject) -> datetime:
    """When Stripe answered with `answer` (a top-level response), by Stripe's clock: the HTTP
    `Date` header, whole seconds like events' `created`."""
    response = answer.last_response
    date = None if response is None else response.headers.get("Date")
    if date is None:
        raise ValueError(f"Stripe's answer {getattr(answer, 'id', None)} carries no Date header")
    return parsedate_to_datetime(date).astimezone(UTC)


async def write_answer(
    conn: AsyncConnection,
    *,
    mirror: Mirror,
    stripe_client: stripe.StripeClient,
    obj: dict[str, Any],
    answered: datetime,
) -> Outcome:
    """Write `obj` as Stripe returned it at `answered`, as if an event of that second carried it.

    `obj` was fetched, or is the result of our own change. Under `apply_object`'s rule, events of
    earlier seconds are then STALE; events of that second or later fetch again.
    """
    return await apply_object(
        conn,
        mirror=mirror,
        stripe_client=stripe_client,
        row=mirror.row(obj),
        created=answered,
        refetched=True,
    )
