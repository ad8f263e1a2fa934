"""Subscriptions: mirrored from Stripe's subscription objects, listed per principal."""

from dataclasses import dataclass, fields
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.mirror import (
    Mirror,
    Row,
    boolean,
    integer,
    mapping,
    optional,
    reference,
    string,
    string_map,
    unix_time,
    upsert,
)
from services.billing.models import customers, subscriptions


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


def subscription_row(subscription: dict[str, Any]) -> Row:
    """The `billing.subscriptions` row for a Stripe subscription object, old or new API shape.

    The price, quantity and (since API version 2025-03-31) the current period are those of the
    first item; older shapes carry them on the subscription, with `plan` for the price.
    """
    items = (optional(mapping, subscription.get("items")) or {}).get("data") or []
    item = mapping(items[0]) if items else {}

    def of_item(name: str) -> Any:
        value = item.get(name)
        return subscription.get(name) if value is None else value

    return {
        "id": string(subscription["id"]),
        "stripe_customer_id": reference(subscription["customer"]),
        "status": string(subscription["status"]),
        "price_id": optional(reference, item.get("price") or of_item("plan")),
        "quantity": optional(integer, of_item("quantity")),
        "current_period_start": optional(unix_time, of_item("current_period_start")),
        "current_period_end": optional(unix_time, of_item("current_period_end")),
        "trial_start": optional(unix_time, subscription.get("trial_start")),
        "trial_end": optional(unix_time, subscription.get("trial_end")),
        "cancel_at_period_end": boolean(subscription["cancel_at_period_end"]),
        "cancel_at": optional(unix_time, subscription.get("cancel_at")),
        "canceled_at": optional(unix_time, subscription.get("canceled_at")),
        "ended_at": optional(unix_time, subscription.get("ended_at")),
        "created": unix_time(subscription["created"]),
        "metadata": string_map(subscription.get("metadata")),
    }


SUBSCRIPTIONS = Mirror(
    object_type="subscription",
    table=subscriptions,
    key=subscriptions.c.id,
    row=subscription_row,
    service=attrgetter("v1.subscriptions"),
    write=partial(upsert, table=subscriptions, touched="updated_at"),
)


async def list_subscriptions(
    *, engine: AsyncEngine, principal: Principal
) -> list[SubscriptionRecord]:
    """The principal's subscriptions, newest first."""
    query = (
        select(*(subscriptions.c[f.name] for f in fields(SubscriptionRecord)))
        .join(customers, customers.c.stripe_customer_id == subscriptions.c.stripe_customer_id)
        .where(customers.c.principal == principal.key)
        .order_by(subscriptions.c.created.desc(), subscriptions.c.id.desc())
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [SubscriptionRecord(**row._mapping) for row in rows]
