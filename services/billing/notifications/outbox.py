"""The outbox: notifications written in the transaction that applies their event (`record`),
claimed by senders (`claim`), and what became of each (`record_channel`, `finish`, `retry`);
operators list and replay them (`list_notifications`, `replay`).

A row's life: pending → sending (claimed: its attempt id, a lease, committed before anything is
sent) → sent, or back to pending with a backoff after a failure, or dead after the last attempt.
Each channel's result is committed the moment the provider accepted it, so that a sender that
dies repeats at most the message it was sending (its lease runs out; another sender takes it)."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing.errors import InvalidArgument, NotFound
from services.billing.mirror import Outcome
from services.billing.models import charges, customers
from services.billing.notifications.kinds import Fact, fact_of
from services.billing.notifications.tables import notifications

if TYPE_CHECKING:
    from services.billing.events import StripeEvent


class State(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


async def record(conn: AsyncConnection, applied: Iterable[tuple["StripeEvent", Outcome]]) -> None:
    """Write the notifications the applied events tell, once per (kind, object), in `conn`'s
    transaction (the one applying them). One statement, none when no event tells anything."""
    rows = []
    for event, outcome in applied:
        fact = fact_of(
            event_type=event.type, obj=event.object, previous=event.previous, outcome=outcome
        )
        if fact is not None:
            customer = fact.customer or await _charge_customer(conn, fact)
            if customer is not None:
                rows.append(_row(fact, customer, event.id))
    if rows:
        await conn.execute(insert(notifications).on_conflict_do_nothing(), rows)


def _row(fact: Fact, customer: str, event_id: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "kind": fact.kind.value,
        "object_id": fact.object_id,
        "stripe_customer_id": customer,
        "event_id": event_id,
        "data": fact.data,
    }


async def _charge_customer(conn: AsyncConnection, fact: Fact) -> str | None:
    """The Stripe customer of the mirrored charge a refund names (written by its own apply)."""
    found = await conn.execute(
        select(charges.c.stripe_customer_id).where(charges.c.id == fact.charge_id)
    )
    return found.scalar()


@dataclass(frozen=True, slots=True)
class Claimed:
    """A notification a sender holds (state sending, under `attempt_id`), with its recipient."""

    id: uuid.UUID
    attempt_id: uuid.UUID
    kind: str
    object_id: str
    data: dict[str, Any]
    attempts: int
    email_result: str | None
    push_result: str | None
    principal: str | None
    email: str
    name: str
    locales: list[str]


_CLAIM = text(
    "WITH due AS ("
    " SELECT id FROM billing.notifications"
    " WHERE (state = 'pending' AND next_attempt_at <= now())"
    " OR (state = 'sending' AND lease_until <= now())"
    " ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED)"
    " UPDATE billing.notifications AS n SET state = 'sending', attempt_id = gen_random_uuid(),"
    " attempts = n.attempts + 1, lease_until = now() + make_interval(secs => :lease)"
    " FROM due WHERE n.id = due.id"
    " RETURNING n.id, n.attempt_id, n.kind, n.object_id, n.data, n.attempts, n.email_result,"
    " n.push_result, n.stripe_customer_id"
)


async def claim(engine: AsyncEngine, *, limit: int, lease_seconds: float) -> list[Claimed]:
    """Take up to `limit` due notifications (pending and due, or sending past their lease: their
    sender died) for one attempt, committed before any is sent."""
    async with engine.begin() as conn:
        taken = (await conn.execute(_CLAIM, {"limit": limit, "lease": lease_seconds})).all()
        recipients = {
            row.stripe_customer_id: row
            for row in await conn.execute(
                select(
                    customers.c.stripe_customer_id,
                    customers.c.principal,
                    customers.c.email,
                    customers.c.name,
                    customers.c.preferred_locales,
                    customers.c.deleted_at,
                ).where(customers.c.stripe_customer_id.in_({t.stripe_customer_id for t in taken}))
            )
        }
    claimed = []
    for row in taken:
        who = recipients.get(row.stripe_customer_id)
        if who is not None and who.deleted_at is not None:
            who = None  # Stripe deleted the customer: nobody to tell
        claimed.append(
            Claimed(
                id=row.id,
                attempt_id=row.attempt_id,
                kind=row.kind,
                object_id=row.object_id,
                data=row.data,
                attempts=row.attempts,
                email_result=row.email_result,
                push_result=row.push_result,
                principal=None if who is None else who.principal,
                email="" if who is None else who.email,
                name="" if who is None else who.name,
                locales=[] if who is None else list(who.preferred_locales),
            )
        )
    return sorted(claimed, key=lambda c: c.id)


def _held(item: Claimed) -> Any:
    """Only while the row is still this attempt's (a sender past its lease lost it)."""
    return (notifications.c.id == item.id) & (notifications.c.attempt_id == item.attempt_id)


async def renew(engine: AsyncEngine, item: Claimed, *, lease_seconds: float) -> bool:
    """Extend this attempt's lease right before its sends (a batch is sent one notification
    after another); False when the row is no longer this attempt's."""
    async with engine.begin() as conn:
        renewed = await conn.execute(
            update(notifications)
            .where(_held(item))
            .where(notifications.c.state == State.SENDING.value)
            .values(
                lease_until=text("now() + make_interval(secs => :lease)").bindparams(
                    lease=lease_seconds
                )
            )
        )
    return renewed.rowcount == 1


async def record_channel(engine: AsyncEngine, item: Claimed, *, channel: str, result: str) -> None:
    """Commit one channel's result the moment it is known (the crash window ends here)."""
    column = {"email": "email_result", "push": "push_result"}[channel]
    async with engine.begin() as conn:
        await conn.execute(update(notifications).where(_held(item)).values({column: result}))


async def finish(engine: AsyncEngine, item: Claimed) -> None:
    """Every channel is done: sent."""
    async with engine.begin() as conn:
        await conn.execute(
            update(notifications)
            .where(_held(item))
            .values(
                state=State.SENT.value, sent_at=text("now()"), lease_until=None, last_error=None
            )
        )


async def retry(
    engine: AsyncEngine, item: Claimed, *, error: str, delay_seconds: float | None
) -> None:
    """A channel failed: pending again after `delay_seconds`, or dead when None."""
    values: dict[str, Any] = {"last_error": error[:500], "lease_until": None}
    if delay_seconds is None:
        values["state"] = State.DEAD.value
    else:
        values["state"] = State.PENDING.value
        values["next_attempt_at"] = text("now() + make_interval(secs => :delay)").bindparams(
            delay=delay_seconds
        )
    async with engine.begin() as conn:
        await conn.execute(update(notifications).where(_held(item)).values(values))


@dataclass(frozen=True, slots=True)
class Listed:
    id: uuid.UUID
    kind: str
    object_id: str
    stripe_customer_id: str
    state: str
    attempts: int
    email_result: str | None
    push_result: str | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


async def list_notifications(
    *, engine: AsyncEngine, state: str | None, limit: int
) -> Sequence[Listed]:
    """The newest notifications, in one state or all."""
    if state is not None and state not in {s.value for s in State}:
        raise InvalidArgument(f"state must be one of {', '.join(s.value for s in State)}")
    if not 1 <= limit <= 1000:
        raise InvalidArgument("limit must be between 1 and 1000")
    query = select(*(notifications.c[name] for name in Listed.__slots__))
    if state is not None:
        query = query.where(notifications.c.state == state)
    async with engine.connect() as conn:
        rows = await conn.execute(query.order_by(notifications.c.created_at.desc()).limit(limit))
        return [Listed(**row._mapping) for row in rows]


async def replay(*, engine: AsyncEngine, notification_id: str) -> None:
    """Send a dead notification again (its channels not yet sent), attempts counted afresh."""
    try:
        key = uuid.UUID(notification_id)
    except ValueError as e:
        raise InvalidArgument("id must be a notification id (a UUID)") from e
    async with engine.begin() as conn:
        state = (
            await conn.execute(select(notifications.c.state).where(notifications.c.id == key))
        ).scalar()
        if state is None:
            raise NotFound(f"no notification {key}")
        if state != State.DEAD.value:
            raise InvalidArgument(f"notification {key} is {state}; only a dead one is replayed")
        await conn.execute(
            update(notifications)
            .where(notifications.c.id == key)
            .values(state=State.PENDING.value, attempts=0, next_attempt_at=text("now()"))
        )
