"""Entitlements: the features a principal may use now, from the mirror (never Stripe per call).

A subscription grants the features of its price's product (product metadata `features`), as
`access` decides from its status and, for a trial, whether a payment method is saved.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.catalog import entitlement_keys
from services.billing.errors import InvalidArgument
from services.billing.subscription_rules import awaits_payment_method
from services.common.db import fetch_all

# Statuses that may grant anything (see `access`).
_GRANTING = ["active", "trialing", "past_due"]
# The principal's subscriptions in those statuses, with the metadata of their price's product.
_GRANTING_SUBSCRIPTIONS = """
SELECT s.id, s.status, s.cancel_at, s.past_due_since, s.current_period_end,
       s.trial_missing_payment_method,
       s.default_payment_method IS NOT NULL OR c.default_payment_method IS NOT NULL,
       pr.metadata
FROM billing.subscriptions s
JOIN billing.customers c ON c.stripe_customer_id = s.stripe_customer_id
JOIN billing.prices p ON p.id = s.price_id
JOIN billing.products pr ON pr.id = p.product_id
WHERE c.principal = %s AND s.status = ANY(%s::text[])
"""
_FEATURE = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")


@dataclass(frozen=True, slots=True)
class Access:
    granted: bool
    # When access ends for a past_due subscription (the grace period), if it is granted.
    grace_end: datetime | None = None


def access(
    *,
    status: str,
    now: datetime,
    cancel_at: datetime | None,
    past_due_since: datetime | None,
    current_period_end: datetime | None,
    grace: timedelta,
    trial_missing_payment_method: str | None,
    payment_method: bool,
) -> Access:
    """The entitlement policy: whether a subscription in `status` grants its features at `now`.

    active grants; trialing grants, unless the trial waits for a payment method (made to end
    unpaid without one, and none saved: `subscription_rules.awaits_payment_method`); past_due
    grants for `grace` from when it became past_due (from the period end when that is
    unknown); unpaid, canceled, incomplete, incomplete_expired and
    paused do not. Nothing is granted once a planned cancellation (`cancel_at`) has passed, even
    before the mirror hears of it.
    """
    if cancel_at is not None and now >= cancel_at:
        return Access(granted=False)
    if awaits_payment_method(
        status=status,
        trial_missing_payment_method=trial_missing_payment_method,
        payment_method=payment_method,
    ):
        return Access(granted=False)
    if status in ("active", "trialing"):
        return Access(granted=True)
    if status == "past_due":
        since = past_due_since or current_period_end
        if since is None:
            return Access(granted=False)
        end = since + grace if cancel_at is None else min(since + grace, cancel_at)
        return Access(granted=True, grace_end=end) if now < end else Access(granted=False)
    return Access(granted=False)


class _Granting(NamedTuple):
    """A row of `_GRANTING_SUBSCRIPTIONS`."""

    subscription_id: str
    status: str
    cancel_at: datetime | None
    past_due_since: datetime | None
    current_period_end: datetime | None
    trial_missing_payment_method: str | None
    payment_method: bool
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class EntitlementRecord:
    feature: str
    subscription_id: str
    subscription_status: str
    grace_end: datetime | None


def _preferred(a: EntitlementRecord, b: EntitlementRecord) -> EntitlementRecord:
    """Of two grants of one feature, the one lasting longer (no grace end lasts longest)."""
    if a.grace_end is None or (b.grace_end is not None and a.grace_end >= b.grace_end):
        return a
    return b


async def list_entitlements(
    *, engine: AsyncEngine, principal: Principal, grace: timedelta
) -> list[EntitlementRecord]:
    """The features the principal may use now, each with the subscription that grants it."""
    rows = await fetch_all(engine, _GRANTING_SUBSCRIPTIONS, (principal.key, _GRANTING), _Granting)
    now = datetime.now(UTC)
    granted: dict[str, EntitlementRecord] = {}
    for row in rows:
        subscription_id, status, metadata = row.subscription_id, row.status, row.metadata
        verdict = access(
            status=status,
            now=now,
            cancel_at=row.cancel_at,
            past_due_since=row.past_due_since,
            current_period_end=row.current_period_end,
            grace=grace,
            trial_missing_payment_method=row.trial_missing_payment_method,
            payment_method=row.payment_method,
        )
        if not verdict.granted:
            continue
        for feature in entitlement_keys(metadata):
            record = EntitlementRecord(feature, subscription_id, status, verdict.grace_end)
            granted[feature] = _preferred(granted.get(feature, record), record)
    return sorted(granted.values(), key=lambda record: record.feature)


async def check_entitlement(
    *, engine: AsyncEngine, principal: Principal, feature: str, grace: timedelta
) -> EntitlementRecord | None:
    """The principal's entitlement to `feature`, or None."""
    if not _FEATURE.fullmatch(feature):
        raise InvalidArgument("feature must be a feature key such as video_library")
    entitlements = await list_entitlements(engine=engine, principal=principal, grace=grace)
    return next((e for e in entitlements if e.feature == feature), None)
