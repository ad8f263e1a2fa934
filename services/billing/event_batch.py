"""Applying a batch of Stripe events in one transaction: the relay's path (ApplyStripeEvents).

Every event ends as it would alone (`events.apply_event`): the same outcome, once per event id,
never an older event over newer state (`mirror.ruling`, the one rule), each object held against
every other writer until commit (`mirror.locked_versions`). A batch costs a few statements and
one durable commit instead of a transaction of about six round trips per event:

1. Outside any transaction, each payload is parsed and its row built (`events.plan_of`); a
   malformed event is its own error and is never written.
2. One transaction: one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` claims every id in
   `billing.applied_events` (in id order, so two batches sharing ids cannot deadlock); ids not
   returned were applied before: DUPLICATE. Then, per mirror, one `SELECT … FOR UPDATE` locks the
   rows of every object the batch writes, and one statement takes the advisory locks of those
   with no row yet (in the one order of `mirror.lock_objects`). Each event is then ruled on in memory against its
   object's version as it stands after the batch's earlier events (two events may carry one
   product or price): APPLIED, STALE, IGNORED, or applied alone (below).
3. The rows are written behind one savepoint, one statement per mirror (`Mirror.write` takes the
   rows of distinct objects; an object's second row starts another group, so each object's rows
   go in the events' order). Should a write fail (a constraint, a value out of range), that
   savepoint is rolled back and the writes run again each behind its own savepoint: the failing
   event is its own error, the claim of its id is withdrawn, and the rest commit. The common case
   thus pays two statements for its isolation, not two per event.
4. The notifications the applied events tell are written (`notifications.outbox.record`); the
   outcomes other than APPLIED, and the withdrawn claims, are settled in two statements;
   one commit.

An event whose apply needs Stripe is never applied inside the batch, so that its transaction,
which holds the locks of up to a hundred objects, is never held open across an HTTP call:
`checkout.session.completed`, `refund.*`, `invoice.payment_failed` and
`invoice.payment_action_required` (which fetch the session's subscription, the refund's charge,
the invoice's payment), an event that the rule
settles by a fetch (same second as the stored state, or the row holds fetched state: its claim is
withdrawn in the batch), and a repeat of an id within the batch. These are applied after the
batch commits, each on its own as ApplyStripeEvent does (`events.apply_event`), concurrently, in
the time the call has left: one that Stripe does not answer in time is its own `TimeoutError`.

A failure of the batch's transaction itself (the database down, a deadlock with the catalog sync)
is the error of each of its events, none of which is then recorded: the relay retries them.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing import events
from services.billing.events import StripeEvent, Write
from services.billing.mirror import (
    Outcome,
    Ruling,
    Version,
    lock_objects,
    ruling,
    versioned,
)
from services.billing.notifications import outbox
from services.common.db import DATABASE_FAILURES

log = logging.getLogger(__name__)

# On billing.applied_events (models.applied_events). Every id claimed as applied, in id
# order; those returned are new.
_CLAIM = text(
    "INSERT INTO billing.applied_events (event_id, type, event_created, outcome)"
    " SELECT id, type, created, 'applied'"
    " FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[]),"
    " CAST(:created AS timestamptz[])) AS e(id, type, created)"
    " ORDER BY id"
    " ON CONFLICT (event_id) DO NOTHING"
    " RETURNING event_id"
)
_RECORD_OUTCOMES = text(
    "UPDATE billing.applied_events AS a SET outcome = u.outcome"
    " FROM unnest(CAST(:ids AS text[]), CAST(:outcomes AS text[])) AS u(event_id, outcome)"
    " WHERE a.event_id = u.event_id"
)
_WITHDRAW = text("DELETE FROM billing.applied_events WHERE event_id = ANY(CAST(:ids AS text[]))")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event as the relay delivers it: its id, its type, its JSON as Stripe sent it."""

    event_id: str
    event_type: str
    payload: bytes


# What became of one event: its outcome, or the error it is answered with (TimeoutError when
# the call's time ran out before it was applied).
Result = Outcome | Exception


class _Alone:
    """The event is applied on its own after the batch (it needs Stripe)."""


_ALONE = _Alone()
_Fate = Outcome | Exception | _Alone


@dataclass(frozen=True, slots=True)
class _Batched:
    index: int
    event: StripeEvent
    write: Write | None  # None: recorded as IGNORED


class _WriteFailed(Exception):
    """A write of the batch failed (with `error`): its writes are run again, each behind its
    own savepoint."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def apply_events(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    deliveries: Sequence[Delivery],
    limit: float | None,
) -> list[Result]:
    """Apply `deliveries` in one transaction where they need no Stripe call, the others each on
    its own after it; one result per delivery, in order, within `limit` seconds (None: none)."""
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    fates: list[_Fate] = [_ALONE] * len(deliveries)
    batched: list[_Batched] = []
    ids: set[str] = set()
    for index, delivery in enumerate(deliveries):
        try:
            event = events.parse_event(
                event_id=delivery.event_id, event_type=delivery.event_type, payload=delivery.payload
            )
            plan = events.plan_of(event)
        except Exception as e:  # malformed: its own error, nothing written
            fates[index] = e
            continue
        if (plan is None or isinstance(plan, Write)) and event.id not in ids:
            batched.append(_Batched(index, event, plan))
            ids.add(event.id)
    if batched:
        try:
            async with asyncio.timeout_at(deadline):
                decided = await _apply_in_one_transaction(engine, batched)
        except Exception as e:  # the transaction failed: so did each of its events
            decided = {item.index: e for item in batched}
        for index, fate in decided.items():
            fates[index] = fate
    alone = [index for index, fate in enumerate(fates) if fate is _ALONE]
    answers = await asyncio.gather(
        *(_apply_alone(engine, stripe_client, deliveries[index], deadline) for index in alone),
        return_exceptions=True,
    )
    for index, answer in zip(alone, answers, strict=True):
        if isinstance(answer, BaseException) and not isinstance(answer, Exception):
            raise answer  # cancellation and the like are not an event's result
        fates[index] = answer
    results = [fate for fate in fates if not isinstance(fate, _Alone)]
    _log_summary(deliveries, results, in_batch=len(batched), alone=len(alone))
    return results


async def _apply_alone(
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    delivery: Delivery,
    deadline: float | None,
) -> Outcome:
    async with asyncio.timeout_at(deadline):
        return await events.apply_event(
            engine=engine,
            stripe_client=stripe_client,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            payload=delivery.payload,
        )


async def _apply_in_one_transaction(
    engine: AsyncEngine, batched: list[_Batched]
) -> dict[int, _Fate]:
    async with engine.begin() as conn:
        claimed = set(
            (
                await conn.execute(
                    _CLAIM,
                    {
                        "ids": [item.event.id for item in batched],
                        "types": [item.event.type for item in batched],
                        "created": [item.event.created for item in batched],
                    },
                )
            ).scalars()
        )
        fates: dict[int, _Fate] = {}
        writes: list[_Writing] = []
        for item in batched:
            if item.event.id not in claimed:
                fates[item.index] = Outcome.DUPLICATE
            elif item.write is None:
                fates[item.index] = Outcome.IGNORED
            else:
                key = item.write.row[item.write.mirror.key.name]
                writes.append(_Writing(item.index, item.event, item.write, key))
        fates |= await _write(conn, writes)
        await outbox.record(
            conn,
            (
                (item.event, fate)
                for item in batched
                if isinstance(fate := fates[item.index], Outcome)
            ),
        )
        await _settle(conn, batched, fates)
    return fates


@dataclass(frozen=True, slots=True)
class _Writing:
    index: int
    event: StripeEvent
    write: Write
    key: str  # the object's Stripe id

    @property
    def table(self) -> str:
        return self.write.mirror.table.fullname


async def _write(conn: AsyncConnection, writes: list[_Writing]) -> dict[int, _Fate]:
    """Lock every object written, then write: behind one savepoint, or, should a write fail,
    each behind its own."""
    locked = await lock_objects(conn, ((item.write.mirror, item.key) for item in writes))
    try:
        async with _savepoint(conn):
            return await _write_each(conn, writes, locked, isolated=False)
    except _WriteFailed:
        return await _write_each(conn, writes, locked, isolated=True)


@asynccontextmanager
async def _savepoint(conn: AsyncConnection) -> AsyncIterator[None]:
    """Run the block behind a savepoint: should it fail, its writes alone are rolled back.
    Released either way, so that what follows is written by the transaction itself."""
    await conn.exec_driver_sql("SAVEPOINT apply")
    try:
        yield
    except DATABASE_FAILURES:
        raise  # the connection is gone: so is the transaction
    except Exception:
        await conn.exec_driver_sql("ROLLBACK TO SAVEPOINT apply")
        await conn.exec_driver_sql("RELEASE SAVEPOINT apply")
        raise
    await conn.exec_driver_sql("RELEASE SAVEPOINT apply")


async def _write_each(
    conn: AsyncConnection,
    writes: list[_Writing],
    locked: dict[str, dict[str, Version]],
    *,
    isolated: bool,
) -> dict[int, _Fate]:
    """Rule on each event against its object's version after the events before it, and write.

    Rows are written a group at a time, one statement per mirror (`Mirror.write` takes rows of
    distinct objects): a group ends where an object comes again, so that every object's rows are
    written in the events' order; `isolated`, each event is its own group, behind its own
    savepoint, and a failure is that event's result."""
    versions = {table: dict(stored) for table, stored in locked.items()}
    fates: dict[int, _Fate] = {}
    group: list[_Writing] = []
    for item in writes:
        stored = versions[item.table]
        match ruling(stored.get(item.key), mirror=item.write.mirror, created=item.event.created):
            case Ruling.IGNORE:
                fates[item.index] = Outcome.IGNORED
                continue
            case Ruling.STALE:
                fates[item.index] = Outcome.STALE
                continue
            case Ruling.FETCH:
                fates[item.index] = _ALONE
                continue
        if isolated:
            try:
                async with _savepoint(conn):
                    await _write_group(conn, [item])
            except _WriteFailed as e:
                fates[item.index] = e.error
                continue
        else:
            if any((w.table, w.key) == (item.table, item.key) for w in group):
                await _write_group(conn, group)
                group = []
            group.append(item)
        stored[item.key] = Version(item.event.created, refetched=False)
        fates[item.index] = Outcome.APPLIED
    await _write_group(conn, group)
    return fates


async def _write_group(conn: AsyncConnection, group: list[_Writing]) -> None:
    """Write the rows of these events (of distinct objects), one statement per mirror; a failure
    other than the database's is a _WriteFailed."""
    tables: dict[str, list[_Writing]] = {}
    for item in group:
        tables.setdefault(item.table, []).append(item)
    try:
        for table in sorted(tables):
            items = tables[table]
            await items[0].write.mirror.write(
                conn,
                [
                    versioned(item.write.row, created=item.event.created, refetched=False)
                    for item in items
                ],
            )
    except DATABASE_FAILURES:
        raise  # the connection is gone: so is the batch
    except Exception as e:
        raise _WriteFailed(e) from e


async def _settle(conn: AsyncConnection, batched: list[_Batched], fates: dict[int, _Fate]) -> None:
    """Record outcomes other than APPLIED; withdraw the claims of events not applied here."""
    recorded = [
        (item.event.id, fate.value)
        for item in batched
        if isinstance(fate := fates[item.index], Outcome)
        and fate not in (Outcome.APPLIED, Outcome.DUPLICATE)
    ]
    if recorded:
        ids, outcomes = zip(*recorded, strict=True)
        await conn.execute(_RECORD_OUTCOMES, {"ids": list(ids), "outcomes": list(outcomes)})
    withdrawn = [item.event.id for item in batched if not isinstance(fates[item.index], Outcome)]
    if withdrawn:
        await conn.execute(_WITHDRAW, {"ids": withdrawn})


def _log_summary(
    deliveries: Sequence[Delivery], results: list[Result], *, in_batch: int, alone: int
) -> None:
    """One line per batch at INFO; one per event at DEBUG."""
    fates = [result.value if isinstance(result, Outcome) else "error" for result in results]
    log.info(
        "stripe events applied",
        extra={
            "fields": {"events": len(results), "in_batch": in_batch, "alone": alone}
            | Counter(fates)
        },
    )
    if log.isEnabledFor(logging.DEBUG):
        for delivery, fate in zip(deliveries, fates, strict=True):
            log.debug(
                "stripe event processed",
                extra={
                    "fields": {
                        "event": delivery.event_id,
                        "type": delivery.event_type,
                        "outcome": fate,
                    }
                },
            )
