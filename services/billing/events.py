"""Applying Stripe events to the mirror: each event id once, and never over newer state.

The webhooks relay delivers every event Stripe sends. Billing mirrors the object carried by the
types in `_MIRRORED` (where the mirror wants it: payment intents only of purchases), fetches the
subscription a completed Checkout created (or whose delayed payment ended) and the charge a refund
changed (`_FETCHED`), and how a failed or waiting invoice payment ended (`RecordPaymentAttempt`;
`RecordIntentAttempt` for a subscription's payment intent that waits for a payment made outside
the app: async_payments.py), and records every other type as
IGNORED. The ordering rule is `mirror.ruling`'s; the notifications an applied event tells are
written in its transaction (`notifications.outbox.record`). `apply_event` applies one event in a transaction
of its own (ApplyStripeEvent); the relay's batches go through `event_batch`, which reads events and
plans their writes with `parse_event` and `plan_of` and applies here, alone, those that need Stripe.
"""

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import stripe
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing.async_payments import waits_outside
from services.billing.catalog import PRICES, PRODUCTS
from services.billing.customers import CUSTOMERS
from services.billing.errors import InvalidArgument, StripeRejected
from services.billing.invoice_payments import invoice_of_intent, payment_attempt, record_attempt
from services.billing.invoices import INVOICES
from services.billing.mirror import (
    Mirror,
    Outcome,
    Row,
    apply_object,
    optional,
    reference,
    unix_time,
)
from services.billing.models import applied_events
from services.billing.notifications import outbox
from services.billing.payment_methods import PAYMENT_METHODS
from services.billing.purchases import CHARGES, DISPUTES, PURCHASES
from services.billing.subscriptions import SCHEDULES, SUBSCRIPTIONS
from services.common.stripe_events import (
    CHARGE_EVENTS,
    CHECKOUT_ASYNC_PAYMENT_EVENTS,
    CHECKOUT_COMPLETED,
    CUSTOMER_EVENTS,
    DISPUTE_EVENTS,
    INVOICE_EVENTS,
    INVOICE_PAYMENT_ATTEMPT_EVENTS,
    PAYMENT_INTENT_EVENTS,
    PAYMENT_METHOD_EVENTS,
    PRICE_EVENTS,
    PRODUCT_EVENTS,
    REFUND_EVENTS,
    SCHEDULE_EVENTS,
    SUBSCRIPTION_EVENTS,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Event types whose `data.object` is written to a mirror, by type.
_MIRRORED: Mapping[str, Mirror] = {
    **dict.fromkeys(CUSTOMER_EVENTS, CUSTOMERS),
    **dict.fromkeys(PRODUCT_EVENTS, PRODUCTS),
    **dict.fromkeys(PRICE_EVENTS, PRICES),
    **dict.fromkeys(SUBSCRIPTION_EVENTS, SUBSCRIPTIONS),
    **dict.fromkeys(SCHEDULE_EVENTS, SCHEDULES),
    **dict.fromkeys(INVOICE_EVENTS, INVOICES),
    **dict.fromkeys(PAYMENT_METHOD_EVENTS, PAYMENT_METHODS),
    **dict.fromkeys(PAYMENT_INTENT_EVENTS, PURCHASES),
    **dict.fromkeys(CHARGE_EVENTS, CHARGES),
    **dict.fromkeys(DISPUTE_EVENTS, DISPUTES),
}
# Of those, the types that say Stripe deleted the object.
_DELETIONS = frozenset({"customer.deleted", "product.deleted", "price.deleted"})
# Event types that name an object to fetch from Stripe, then mirror: by type, the object the event
# carries, the mirror, and how to read the id of the object to fetch (None: nothing to fetch).
_FETCHED: Mapping[str, tuple[str, Mirror, Callable[[dict[str, Any]], str | None]]] = {
    # The session's subscription, if it made one (once made, and once its payment by a delayed
    # method succeeded or failed).
    **dict.fromkeys(
        (CHECKOUT_COMPLETED, *CHECKOUT_ASYNC_PAYMENT_EVENTS),
        (
            "checkout.session",
            SUBSCRIPTIONS,
            lambda session: optional(reference, session["subscription"]),
        ),
    ),
    # The refunded charge: its amount refunded (a refund's own object does not say the total).
    **dict.fromkeys(
        REFUND_EVENTS, ("refund", CHARGES, lambda refund: optional(reference, refund["charge"]))
    ),
}
# Every type that billing acts on is in BILLING_EVENT_TYPES; any other
# (`checkout.session.expired`, …) is recorded as IGNORED.


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """The fields of a Stripe event that billing reads; `object` is its `data.object`."""

    id: str
    type: str
    created: datetime
    object: dict[str, Any]
    # `data.previous_attributes`: the fields an `*.updated` event changed, as they were.
    previous: dict[str, Any] = field(default_factory=dict)


def parse_event(*, event_id: str, event_type: str, payload: bytes) -> StripeEvent:
    """The event in `payload` (its JSON as Stripe sent it), which must carry this id and type."""
    try:
        event = json.loads(payload)
    except ValueError as e:  # not UTF-8, or not JSON
        raise InvalidArgument("the payload is not JSON") from e
    if not isinstance(event, dict):
        raise InvalidArgument("the payload is not a JSON object")
    if not event_id or event.get("id") != event_id:
        raise InvalidArgument("the payload's id is not event_id")
    if not event_type or event.get("type") != event_type:
        raise InvalidArgument("the payload's type is not type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise InvalidArgument("the payload has no data.object")
    try:
        created = unix_time(event.get("created"))
    except (TypeError, ValueError) as e:
        raise InvalidArgument("the payload's created is not a Unix time") from e
    previous = data.get("previous_attributes") if isinstance(data, dict) else None
    return StripeEvent(
        id=event_id,
        type=event_type,
        created=created,
        object=obj,
        previous=previous if isinstance(previous, dict) else {},
    )


@dataclass(frozen=True, slots=True)
class Write:
    """Write the object the event carries to its mirror."""

    mirror: Mirror
    row: Row

    async def apply(
        self, conn: AsyncConnection, stripe_client: stripe.StripeClient, event: StripeEvent
    ) -> Outcome:
        return await apply_object(
            conn,
            mirror=self.mirror,
            stripe_client=stripe_client,
            row=self.row,
            created=event.created,
        )


@dataclass(frozen=True, slots=True)
class Fetch:
    """Fetch the object the event names and mirror what Stripe returns."""

    mirror: Mirror
    object_id: str

    async def apply(
        self, conn: AsyncConnection, stripe_client: stripe.StripeClient, event: StripeEvent
    ) -> Outcome:
        current = await self.mirror.current(stripe_client, self.object_id)
        if current is None:
            raise StripeRejected(
                f"Stripe has no {self.mirror.object_type} {self.object_id} ({event.id})"
            )
        return await apply_object(
            conn,
            mirror=self.mirror,
            stripe_client=stripe_client,
            row=self.mirror.row(current),
            created=event.created,
            refetched=True,
        )


@dataclass(frozen=True, slots=True)
class RecordPaymentAttempt:
    """Write the invoice the event carries; then fetch how its payment attempt ended (its
    PaymentIntent, Stripe's state now) and record it beside it. Also when the invoice the event
    carries is older than the mirror's (STALE): the newer state came from an event that does not
    fetch the attempt (`invoice.updated`, delivered first or retried later), and the attempt
    would otherwise never be recorded."""

    write: Write

    async def apply(
        self, conn: AsyncConnection, stripe_client: stripe.StripeClient, event: StripeEvent
    ) -> Outcome:
        outcome = await self.write.apply(conn, stripe_client, event)
        if outcome in (Outcome.APPLIED, Outcome.STALE):
            invoice_id = self.write.row["id"]
            attempt = await payment_attempt(stripe_client, invoice_id)
            if attempt is not None:
                await record_attempt(conn, invoice_id, attempt)
        return outcome


@dataclass(frozen=True, slots=True)
class RecordIntentAttempt:
    """A payment intent that is not a purchase (a subscription invoice's) waits for a payment
    made outside the app, or its voucher expired: fetch the invoice it pays and mirror it (its
    events may not have been applied yet), then record how its attempt stands beside it, as
    RecordPaymentAttempt does. IGNORED when it pays no invoice."""

    payment_intent_id: str

    async def apply(
        self, conn: AsyncConnection, stripe_client: stripe.StripeClient, event: StripeEvent
    ) -> Outcome:
        invoice_id = await invoice_of_intent(stripe_client, self.payment_intent_id)
        if invoice_id is None:
            return Outcome.IGNORED
        outcome = await Fetch(INVOICES, invoice_id).apply(conn, stripe_client, event)
        attempt = await payment_attempt(stripe_client, invoice_id)
        if attempt is not None:
            await record_attempt(conn, invoice_id, attempt)
        return outcome


Plan = Write | Fetch | RecordPaymentAttempt | RecordIntentAttempt


def _read(event: StripeEvent, object_type: str, read: Callable[[dict[str, Any]], T]) -> T:
    """`read(data.object)`, checking it is an `object_type`; InvalidArgument when malformed."""
    if event.object.get("object") != object_type:
        raise InvalidArgument(f"a {event.type} event must carry a {object_type} object")
    try:
        return read(event.object)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        raise InvalidArgument(f"the {object_type} of event {event.id} is malformed: {e!r}") from e


def plan_of(event: StripeEvent) -> Plan | None:
    """What applying `event` does besides recording it; checked before anything is written.
    Only a `Write` needs no Stripe call."""
    mirror = _MIRRORED.get(event.type)
    if mirror is not None:
        if not _read(event, mirror.object_type, mirror.wanted):
            if mirror is PURCHASES and _read(event, mirror.object_type, waits_outside):
                return RecordIntentAttempt(_read(event, "payment_intent", lambda i: i["id"]))
            return None
        row = _read(event, mirror.object_type, mirror.row)
        if event.type in _DELETIONS:
            row = mirror.retire(row, event.created)
        if event.type in INVOICE_PAYMENT_ATTEMPT_EVENTS:
            return RecordPaymentAttempt(Write(mirror, row))
        return Write(mirror, row)
    fetched = _FETCHED.get(event.type)
    if fetched is not None:
        object_type, mirror, object_id = fetched
        found = _read(event, object_type, object_id)
        return None if found is None else Fetch(mirror, found)
    return None


async def apply_event(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    event_id: str,
    event_type: str,
    payload: bytes,
) -> Outcome:
    """Apply one Stripe event to the mirror, in one transaction, once per event id."""
    event = parse_event(event_id=event_id, event_type=event_type, payload=payload)
    plan = plan_of(event)
    async with engine.begin() as conn:
        # Claimed as applied, corrected below. A concurrent apply of the same id waits here
        # for the first to commit, then finds the conflict: a duplicate.
        claimed = await conn.execute(
            insert(applied_events)
            .values(
                event_id=event.id,
                type=event.type,
                event_created=event.created,
                outcome=Outcome.APPLIED.value,
            )
            .on_conflict_do_nothing()
            .returning(applied_events.c.event_id)
        )
        if claimed.first() is None:
            outcome = Outcome.DUPLICATE
        else:
            outcome = (
                Outcome.IGNORED if plan is None else await plan.apply(conn, stripe_client, event)
            )
            await outbox.record(conn, [(event, outcome)])
            if outcome is not Outcome.APPLIED:
                await conn.execute(
                    update(applied_events)
                    .where(applied_events.c.event_id == event.id)
                    .values(outcome=outcome.value)
                )
    log.debug(
        "stripe event processed",
        extra={"fields": {"event": event.id, "type": event.type, "outcome": outcome.value}},
    )
    return outcome
