"""What resync and reconcile read from Stripe: each mirrored resource, listed a page at a time
(Stripe's `starting_after` cursor), optionally of one customer or created since a day, and how a
page is applied to the mirror, as fetched state (`mirror.write_answer`: never over newer state).
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

import stripe
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.catalog import PRICES, PRODUCTS
from services.billing.customers import CUSTOMERS, adopt_customer
from services.billing.errors import StripeUnavailable
from services.billing.invoice_payments import payment_attempt, record_attempt
from services.billing.invoices import INVOICES
from services.billing.mirror import (
    Mirror,
    Outcome,
    Row,
    answered_at,
    lock_objects,
    string,
    write_answer,
)
from services.billing.purchases import CHARGES, DISPUTES, PURCHASES
from services.billing.stripe_errors import retrieve_or_none, translated_stripe_errors
from services.billing.subscriptions import SCHEDULES, SUBSCRIPTIONS
from services.common.stripe_sdk import StripeBackingOff

log = logging.getLogger(__name__)
T = TypeVar("T")

# Stripe's largest page.
PAGE_SIZE = 100


class PerCustomer(StrEnum):
    """How a resource is read for one customer."""

    FILTER = "filter"  # its list takes `customer`
    SELF = "self"  # the customer itself, retrieved
    NONE = "none"  # not one customer's (the catalog), or not listable by customer (disputes)


@dataclass(frozen=True, slots=True)
class Source:
    """One mirrored resource as Stripe lists it."""

    name: str
    mirror: Mirror
    per_customer: PerCustomer
    # Fixed list parameters (subscriptions: every status, canceled ones too).
    params: Mapping[str, Any] = field(default_factory=dict)
    # Whether a row already says that Stripe deleted its object.
    retired: Callable[[Row], bool] = lambda _row: False


def _inactive(row: Row) -> bool:
    return row["active"] is False


def _deleted(row: Row) -> bool:
    return row["deleted_at"] is not None


# In the order a resync applies them: the catalog and customers before what refers to them.
SOURCES = (
    Source("products", PRODUCTS, PerCustomer.NONE, retired=_inactive),
    Source("prices", PRICES, PerCustomer.NONE, retired=_inactive),
    Source("customers", CUSTOMERS, PerCustomer.SELF, retired=_deleted),
    Source("subscriptions", SUBSCRIPTIONS, PerCustomer.FILTER, {"status": "all"}),
    Source("subscription_schedules", SCHEDULES, PerCustomer.FILTER),
    Source("invoices", INVOICES, PerCustomer.FILTER),
    Source("purchases", PURCHASES, PerCustomer.FILTER),
    Source("charges", CHARGES, PerCustomer.FILTER),
    Source("disputes", DISPUTES, PerCustomer.NONE),
)


@dataclass(frozen=True, slots=True)
class Scope:
    """What a run covers: everything, or one customer's objects, or those created since a day."""

    customer: str | None = None
    since: date | None = None

    @property
    def key(self) -> str:
        """The run's name in `billing.resync_cursors`."""
        parts = [] if self.customer is None else [f"customer={self.customer}"]
        parts += [] if self.since is None else [f"since={self.since.isoformat()}"]
        return ";".join(parts) or "all"

    def covers(self, source: Source) -> bool:
        return self.customer is None or source.per_customer is not PerCustomer.NONE


@dataclass(frozen=True, slots=True)
class Page:
    """Objects of one list page (as dicts) and when Stripe answered it (its clock)."""

    objects: list[dict[str, Any]]
    answered: datetime
    # The cursor of the next page; None after the last.
    next_after: str | None


async def fetch_page(
    stripe_client: stripe.StripeClient,
    source: Source,
    scope: Scope,
    *,
    starting_after: str | None,
    limit: int = PAGE_SIZE,
) -> Page:
    """The page of `source` after `starting_after` (the first page when None)."""
    service = source.mirror.service(stripe_client)
    async with translated_stripe_errors(f"read {source.name}"):
        if scope.customer is not None and source.per_customer is PerCustomer.SELF:
            found = await service.retrieve_async(scope.customer)
            obj = found.to_dict()
            return Page([] if obj.get("deleted") else [obj], answered_at(found), None)
        params: dict[str, Any] = {**source.params, "limit": limit}
        if source.mirror.expand:  # includable fields the row needs (prices' currency options)
            params["expand"] = [f"data.{name}" for name in source.mirror.expand]
        if starting_after is not None:
            params["starting_after"] = starting_after
        if scope.since is not None:
            since = datetime(scope.since.year, scope.since.month, scope.since.day, tzinfo=UTC)
            params["created"] = {"gte": int(since.timestamp())}
        if scope.customer is not None:
            params["customer"] = scope.customer
        listed = await service.list_async(params=params)
    objects = [obj.to_dict() for obj in listed.data]
    more = listed.has_more and bool(objects)
    return Page(objects, answered_at(listed), string(objects[-1]["id"]) if more else None)


async def fetch_one(
    stripe_client: stripe.StripeClient, source: Source, object_id: str
) -> tuple[dict[str, Any], datetime] | None:
    """One object of `source` as Stripe has it, and when it answered; None when it has it no
    more (or never had it, or deleted it)."""
    found = await retrieve_or_none(
        source.mirror.service(stripe_client).retrieve_async,
        object_id,
        action=f"retrieve {source.mirror.object_type} {object_id}",
    )
    if found is None:
        return None
    obj = found.to_dict()
    return None if obj.get("deleted") else (obj, answered_at(found))


async def apply_fetched(
    conn: AsyncConnection,
    stripe_client: stripe.StripeClient,
    source: Source,
    obj: dict[str, Any],
    *,
    answered: datetime,
) -> Outcome:
    """Write one fetched object as Stripe had it at `answered`, unless the mirror is newer; with
    an open invoice, how its last payment attempt ended (as the failure events record it)."""
    mirror = source.mirror
    if not mirror.wanted(obj):
        return Outcome.IGNORED
    if mirror is CUSTOMERS:
        await adopt_customer(conn, obj)
    outcome = await write_answer(
        conn, mirror=mirror, stripe_client=stripe_client, obj=obj, answered=answered
    )
    if mirror is INVOICES and outcome is Outcome.APPLIED and obj.get("status") == "open":
        attempt = await payment_attempt(stripe_client, string(obj["id"]))
        if attempt is not None:
            await record_attempt(conn, string(obj["id"]), attempt)
    return outcome


async def apply_page(
    conn: AsyncConnection, stripe_client: stripe.StripeClient, source: Source, page: Page
) -> Counter[Outcome]:
    """Apply a page's objects in `conn`'s transaction; how many had each outcome."""
    outcomes: Counter[Outcome] = Counter()
    # Held first, in the one order of every writer of many objects (a batch of events).
    await lock_objects(conn, ((source.mirror, string(obj["id"])) for obj in page.objects))
    for obj in page.objects:
        outcomes[await apply_fetched(conn, stripe_client, source, obj, answered=page.answered)] += 1
    return outcomes


async def patiently(attempt: Callable[[], Awaitable[T]], *, max_waits: int = 20) -> T:
    """`attempt()`, again after the wait Stripe's rate limit asks for (the shared client's
    backoff window), up to `max_waits` times."""
    for _ in range(max_waits):
        try:
            return await attempt()
        except (StripeBackingOff, StripeUnavailable) as e:
            if e.retry_after is None:
                raise
            log.info("stripe rate limit: waiting", extra={"fields": {"seconds": e.retry_after}})
            await asyncio.sleep(e.retry_after)
    return await attempt()
