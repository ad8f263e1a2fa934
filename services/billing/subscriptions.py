"""Subscriptions: mirrored from Stripe's subscription (and subscription schedule) objects, read
per principal.

A downgrade waits for the end of the period in a subscription schedule whose next phase holds
the new price; the mirror keeps, per schedule, what that next phase changes and when.
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any

import stripe
from sqlalchemy import Row as Row_
from sqlalchemy import Select, case, func, select
from sqlalchemy.dialects.postgresql import Insert, distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.auth.principal import Principal
from services.billing.customers import CUSTOMERS, settle_currency
from services.billing.discounts import (
    DiscountRecord,
    discount_ids,
    discount_records,
    in_order,
    mirror_discounts,
)
from services.billing.errors import NotFound
from services.billing.mirror import (
    Mirror,
    Row,
    answered_at,
    boolean,
    integer,
    lock_objects,
    mapping,
    optional,
    reference,
    string,
    string_map,
    unix_time,
    upsert,
    write_answer,
)
from services.billing.models import customers, subscription_schedules, subscriptions
from services.billing.stripe_errors import translated_stripe_errors

# Statuses of a schedule that may still change its subscription.
_PENDING_SCHEDULE_STATUSES = ("not_started", "active")


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    id: str
    stripe_customer_id: str
    status: str
    price_id: str | None
    quantity: int | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    created: datetime
    latest_invoice_id: str | None
    # A downgrade waiting for the period end: the price and quantity, and when they apply.
    scheduled_price_id: str | None
    scheduled_quantity: int | None
    scheduled_change_time: datetime | None
    # A change waiting for its invoice to be paid (a pending update): price, quantity, expiry.
    pending_price_id: str | None = None
    pending_quantity: int | None = None
    pending_update_expires_at: datetime | None = None
    # Collection paused (Stripe's pause_collection): how its invoices end meanwhile (void,
    # keep_as_draft or mark_uncollectible), when it resumes (None: until unpaused), and the end
    # of the period paid before the pause (where a void pause stops access: entitlements.py).
    pause_behavior: str | None = None
    pause_resumes_at: datetime | None = None
    pause_access_end: datetime | None = None
    # The discounts applied, in order (those whose details the mirror holds).
    discounts: tuple[DiscountRecord, ...] = ()


def default_payment_method(owner: dict[str, Any]) -> str | None:
    """What Stripe charges for a subscription, or a customer, by default: its default payment
    method, else its default source (a subscription's comes before its customer's)."""
    return optional(reference, owner.get("default_payment_method")) or optional(
        reference, owner.get("default_source")
    )


def trial_missing_payment_method(subscription: dict[str, Any]) -> str | None:
    """`trial_settings.end_behavior.missing_payment_method`: what ends a trial that has no
    payment method (`cancel`, `create_invoice` or `pause`)."""
    settings = optional(mapping, subscription.get("trial_settings")) or {}
    end_behavior = optional(mapping, settings.get("end_behavior")) or {}
    return optional(string, end_behavior.get("missing_payment_method"))


def subscription_row(subscription: dict[str, Any]) -> Row:
    """The `billing.subscriptions` row for a Stripe subscription object at the pinned API version.

    The price, quantity and current period are those of its (first) item: since API version
    2025-03-31 the subscription itself has no `plan`, `quantity` or `current_period_*`.
    """
    item = mapping(mapping(subscription["items"])["data"][0])
    return {
        "id": string(subscription["id"]),
        "stripe_customer_id": reference(subscription["customer"]),
        "status": string(subscription["status"]),
        "price_id": reference(item["price"]),
        "quantity": optional(integer, item.get("quantity")),
        "current_period_start": unix_time(item["current_period_start"]),
        "current_period_end": unix_time(item["current_period_end"]),
        "trial_start": optional(unix_time, subscription.get("trial_start")),
        "trial_end": optional(unix_time, subscription.get("trial_end")),
        "cancel_at_period_end": boolean(subscription["cancel_at_period_end"]),
        "cancel_at": optional(unix_time, subscription.get("cancel_at")),
        "canceled_at": optional(unix_time, subscription.get("canceled_at")),
        "ended_at": optional(unix_time, subscription.get("ended_at")),
        "created": unix_time(subscription["created"]),
        "metadata": string_map(subscription.get("metadata")),
        "latest_invoice_id": optional(reference, subscription.get("latest_invoice")),
        "default_payment_method": default_payment_method(subscription),
        "trial_missing_payment_method": trial_missing_payment_method(subscription),
        "discount_ids": discount_ids(subscription),
        **_pending_update_of(subscription),
        **_pause_of(subscription),
    }


def _pause_of(subscription: dict[str, Any]) -> Row:
    """Stripe's `pause_collection` (null while collecting): its behavior and resume time."""
    pause = optional(mapping, subscription.get("pause_collection"))
    return {
        "pause_behavior": None if pause is None else string(pause["behavior"]),
        "pause_resumes_at": None if pause is None else optional(unix_time, pause.get("resumes_at")),
    }


def _pending_update_of(subscription: dict[str, Any]) -> Row:
    """The change waiting for its invoice's payment (`pending_update`, made by an update with
    `payment_behavior=pending_if_incomplete`): its first item's price and quantity, and when it
    expires. Stripe clears it once the invoice is paid (the change applies) or it expires."""
    pending = optional(mapping, subscription.get("pending_update"))
    items = [mapping(item) for item in (pending or {}).get("subscription_items") or []]
    return {
        "pending_price_id": reference(items[0]["price"]) if items else None,
        "pending_quantity": optional(integer, items[0].get("quantity")) if items else None,
        "pending_update_expires_at": None if pending is None else unix_time(pending["expires_at"]),
    }


@functools.cache
def _subscription_upsert(columns: tuple[str, ...]) -> Insert:
    """The upsert of a subscription row of these columns, built once (see `mirror.upsert`)."""
    stmt = insert(subscriptions)
    excluded = stmt.excluded
    changed: dict[str, Any] = {name: excluded[name] for name in columns if name != "id"}
    changed["updated_at"] = func.now()
    changed["past_due_since"] = case(
        (excluded.status != "past_due", None),
        (
            subscriptions.c.status == "past_due",
            func.coalesce(subscriptions.c.past_due_since, excluded.past_due_since),
        ),
        else_=excluded.past_due_since,
    )
    access_end = case(
        (excluded.pause_behavior.is_(None), None),
        (
            subscriptions.c.pause_behavior == excluded.pause_behavior,
            func.coalesce(subscriptions.c.pause_access_end, excluded.pause_access_end),
        ),
        else_=excluded.pause_access_end,
    )
    changed["pause_access_end"] = access_end
    changed["voided_period_start"] = case(
        (
            (excluded.pause_behavior == "void") & (excluded.current_period_start >= access_end),
            excluded.current_period_start,
        ),
        (
            subscriptions.c.voided_period_start == excluded.current_period_start,
            subscriptions.c.voided_period_start,
        ),
        else_=None,
    )
    return stmt.on_conflict_do_update(index_elements=["id"], set_=changed)


async def _write_subscriptions(conn: AsyncConnection, rows: list[Row]) -> None:
    """Upsert subscription rows; `past_due_since` is the version of the first write that showed
    one past_due, kept while it stays past_due, cleared when it leaves that status; likewise
    `pause_access_end` is the period end of the first write that showed a pause, kept while
    that pause (its behavior) lasts, cleared when collection resumes; and `voided_period_start`
    marks a period begun in a void pause (its invoice voided) until the next period starts."""
    await conn.execute(
        _subscription_upsert(tuple(rows[0])),
        [
            {
                **row,
                "past_due_since": row["source_event_created"]
                if row["status"] == "past_due"
                else None,
                "pause_access_end": None
                if row["pause_behavior"] is None
                else row["current_period_end"],
                "voided_period_start": None,
            }
            for row in rows
        ],
    )


SUBSCRIPTIONS = Mirror(
    object_type="subscription",
    table=subscriptions,
    key=subscriptions.c.id,
    row=subscription_row,
    service=attrgetter("v1.subscriptions"),
    write=_write_subscriptions,
)


def schedule_row(schedule: dict[str, Any]) -> Row:
    """The `billing.subscription_schedules` row for a Stripe subscription schedule: its next
    phase (after the current one, or the first before it starts), if any."""
    phases = [mapping(phase) for phase in schedule["phases"]]
    current = optional(mapping, schedule.get("current_phase"))
    upcoming = [
        phase
        for phase in phases
        if current is None or integer(phase["start_date"]) >= integer(current["end_date"])
    ]
    following = min(upcoming, key=lambda phase: integer(phase["start_date"]), default=None)
    items = [mapping(item) for item in following["items"]] if following else []
    return {
        "id": string(schedule["id"]),
        "subscription_id": optional(reference, schedule.get("subscription")),
        "stripe_customer_id": reference(schedule["customer"]),
        "status": string(schedule["status"]),
        "next_price_id": reference(items[0]["price"]) if items else None,
        "next_quantity": optional(integer, items[0].get("quantity")) if items else None,
        "next_phase_start": unix_time(following["start_date"]) if following else None,
        "created": unix_time(schedule["created"]),
    }


async def _write_schedules(conn: AsyncConnection, rows: list[Row]) -> None:
    await upsert(conn, rows, table=subscription_schedules, touched="updated_at")


SCHEDULES = Mirror(
    object_type="subscription_schedule",
    table=subscription_schedules,
    key=subscription_schedules.c.id,
    row=schedule_row,
    service=attrgetter("v1.subscription_schedules"),
    write=_write_schedules,
)


_MIRRORED_FIELDS = [
    f.name
    for f in fields(SubscriptionRecord)
    if not f.name.startswith("scheduled_") and f.name != "discounts"
]


def _select_records() -> Select[Any]:
    """The principal-owned subscription records, each with the change its newest pending
    schedule makes (a release the mirror has not heard of may leave an older one pending)."""
    schedules = subscription_schedules.c
    pending = (
        select(
            schedules.subscription_id,
            schedules.next_price_id,
            schedules.next_quantity,
            schedules.next_phase_start,
        )
        .where(
            schedules.status.in_(_PENDING_SCHEDULE_STATUSES),
            schedules.next_phase_start.is_not(None),
        )
        .ext(distinct_on(schedules.subscription_id))
        .order_by(schedules.subscription_id, schedules.created.desc(), schedules.id.desc())
        .subquery("pending")
    )
    return (
        select(
            *(subscriptions.c[name] for name in _MIRRORED_FIELDS),
            pending.c.next_price_id.label("scheduled_price_id"),
            pending.c.next_quantity.label("scheduled_quantity"),
            pending.c.next_phase_start.label("scheduled_change_time"),
            subscriptions.c.discount_ids,
        )
        .join(customers, customers.c.stripe_customer_id == subscriptions.c.stripe_customer_id)
        .outerjoin(pending, pending.c.subscription_id == subscriptions.c.id)
    )


async def list_subscriptions(
    *, engine: AsyncEngine, principal: Principal
) -> list[SubscriptionRecord]:
    """The principal's subscriptions, newest first."""
    query = (
        _select_records()
        .where(customers.c.principal == principal.key)
        .order_by(subscriptions.c.created.desc(), subscriptions.c.id.desc())
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        return await _records(conn, rows)


async def _records(conn: AsyncConnection, rows: Sequence[Row_[Any]]) -> list[SubscriptionRecord]:
    """Records of selected rows, each with its mirrored discounts."""
    known = await discount_records(conn, (i for row in rows for i in row.discount_ids))
    records = []
    for row in rows:
        values = dict(row._mapping)
        ids = values.pop("discount_ids")
        records.append(SubscriptionRecord(**values, discounts=in_order(ids, known)))
    return records


async def _principal_subscription(
    conn: AsyncConnection, principal: Principal, subscription_id: str
) -> SubscriptionRecord:
    query = _select_records().where(
        customers.c.principal == principal.key, subscriptions.c.id == subscription_id
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no subscription {subscription_id!r} for this account")
    [record] = await _records(conn, [row])
    return record


async def get_subscription(
    *, engine: AsyncEngine, principal: Principal, subscription_id: str
) -> SubscriptionRecord:
    """One of the principal's subscriptions, from the mirror; NotFound for anyone else's."""
    async with engine.connect() as conn:
        return await _principal_subscription(conn, principal, subscription_id)


async def mirrored_statuses(conn: AsyncConnection, stripe_customer_id: str) -> dict[str, str]:
    """The mirror's status of each subscription of a customer, by subscription id."""
    rows = await conn.execute(
        select(subscriptions.c.id, subscriptions.c.status).where(
            subscriptions.c.stripe_customer_id == stripe_customer_id
        )
    )
    return {row.id: row.status for row in rows}


async def stripe_subscriptions(
    stripe_client: stripe.StripeClient, stripe_customer_id: str
) -> list[dict[str, Any]]:
    """Every subscription Stripe has for a customer, whatever its status (the mirror may lag)."""
    async with translated_stripe_errors("list the customer's subscriptions"):
        listed = await stripe_client.v1.subscriptions.list_async(
            params={"customer": stripe_customer_id, "status": "all", "limit": 100}
        )
        return [subscription.to_dict() async for subscription in listed.auto_paging_iter()]


async def write_through(
    conn: AsyncConnection,
    *,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    answer: stripe.StripeObject,
    subscription: dict[str, Any] | None = None,
    schedules: tuple[stripe.SubscriptionSchedule, ...] = (),
    then: Sequence[tuple[Mirror, str]] = (),
) -> SubscriptionRecord:
    """Write what Stripe just answered to the mirror, then read the principal's record back.

    `answer` is the subscription (or carries it as `subscription`, as a checkout session does);
    `schedules` were answered with it. The events of the same changes, whenever they arrive,
    then find this state: they are STALE, or settled by a fetch. Call it inside a transaction;
    `then` names the objects the caller writes next in it, held with these first.
    """
    subscription = answer.to_dict() if subscription is None else subscription
    # Held first, in the one order of every writer of many objects (a batch of events).
    await lock_objects(
        conn,
        [
            (CUSTOMERS, reference(subscription["customer"])),
            (SUBSCRIPTIONS, string(subscription["id"])),
            *((SCHEDULES, schedule.id) for schedule in schedules),
            *then,
        ],
    )
    await write_answer(
        conn,
        mirror=SUBSCRIPTIONS,
        stripe_client=stripe_client,
        obj=subscription,
        answered=answered_at(answer),
    )
    await mirror_discounts(conn, stripe_client=stripe_client, subscription=subscription)
    # Stripe set the customer's currency with this subscription, if it had none.
    await settle_currency(
        conn,
        stripe_customer_id=reference(subscription["customer"]),
        currency=string(subscription["currency"]),
    )
    for schedule in schedules:
        await write_answer(
            conn,
            mirror=SCHEDULES,
            stripe_client=stripe_client,
            obj=schedule.to_dict(),
            answered=answered_at(schedule),
        )
    return await _principal_subscription(conn, principal, string(subscription["id"]))
