"""Entitlements: the features a principal may use now, from the mirror (never Stripe per call).

A subscription grants the features of its price's product (product metadata `features`), as
`access` decides from its status. A one-time purchase grants the features of the product it
bought, for `duration_days` (product metadata) from when it was paid, or for good without it,
while it is paid and neither fully refunded nor disputed (`access` again: one rule). A trial
grants only once a payment method is saved when it was made to end unpaid without one. A payment
still processing grants nothing: a subscription whose first payment is one grants from when it
succeeds, a purchase once `succeeded`. While collection is paused with behavior `void` (the
app's pause: the service stops), a subscription grants until the end of the period paid before
the pause, then nothing until collection resumes.
"""

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.catalog import entitlement_keys
from services.billing.errors import InvalidArgument
from services.billing.purchases import (
    GRANTING_STATUSES,
    PAID_PURCHASES_OF_PRINCIPAL,
    PURCHASE_STATE,
    SUSPENDING_DISPUTE_STATUSES,
    purchase_status,
)
from services.billing.settings import DisputePolicy
from services.billing.subscription_rules import awaits_payment_method
from services.billing.usage.records import feature_limit
from services.common.db import fetch_all

log = logging.getLogger(__name__)

# Statuses that may grant anything (see `access`).
_GRANTING = ["active", "trialing", "past_due"]
# What may grant the principal features, one row per grant: its subscriptions in those statuses
# (disputed: a payment of their customer that is not a purchase has a dispute that is not won)
# but those never paid whose open invoice's payment is processing (a bank debit that takes days,
# during which Stripe may make the subscription `active`: it grants once the money arrives, as a
# boleto not yet paid does), then its paid purchases; each with the metadata of its product.
_SUBSCRIPTIONS_THEN_PURCHASES = """
SELECT 'subscription', s.id, s.status, s.cancel_at, s.past_due_since, s.current_period_end,
       pr.metadata,
       EXISTS (
           SELECT 1 FROM billing.charges ch JOIN billing.disputes d ON d.charge_id = ch.id
           WHERE ch.stripe_customer_id = s.stripe_customer_id
             AND d.status = ANY(%s::text[])
             AND NOT EXISTS (SELECT 1 FROM billing.purchases pu WHERE pu.id = ch.payment_intent_id)
       ),
       s.trial_missing_payment_method,
       s.default_payment_method IS NOT NULL OR c.default_payment_method IS NOT NULL,
       0::bigint, 0::bigint, NULL::text, NULL::timestamptz,
       s.pause_behavior, s.pause_resumes_at, s.pause_access_end,
       COALESCE(s.voided_period_start = s.current_period_start, false)
FROM billing.subscriptions s
JOIN billing.customers c ON c.stripe_customer_id = s.stripe_customer_id
JOIN billing.prices p ON p.id = s.price_id
JOIN billing.products pr ON pr.id = p.product_id
WHERE c.principal = %s AND s.status = ANY(%s::text[])
  AND NOT EXISTS (  -- its first payment still processing
      SELECT 1 FROM billing.invoices i
      WHERE i.subscription_id = s.id AND i.status = 'open' AND i.payment_status = 'processing'
        AND NOT EXISTS (
            SELECT 1 FROM billing.invoices paid
            WHERE paid.subscription_id = s.id AND paid.amount_paid > 0
        )
  )
UNION ALL
SELECT 'purchase', p.id, NULL, NULL, NULL, NULL, COALESCE(pr.metadata, '{}'::jsonb), false,
       NULL, true,"""
_NOT_PAUSED = ", NULL::text, NULL::timestamptz, NULL::timestamptz, false\n"
_GRANTS = _SUBSCRIPTIONS_THEN_PURCHASES + PURCHASE_STATE + _NOT_PAUSED + PAID_PURCHASES_OF_PRINCIPAL
_FEATURE = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")


@dataclass(frozen=True, slots=True)
class Pause:
    """Collection paused (a subscription's `pause_collection`): its behavior, when Stripe
    collects again (None: until unpaused), and the end of the period paid before it."""

    behavior: str
    resumes_at: datetime | None = None
    access_end: datetime | None = None


# The pause behavior that stops the service: its invoices are voided, nothing is paid for.
PAUSE_STOPS_SERVICE = "void"


@dataclass(frozen=True, slots=True)
class Access:
    granted: bool
    # When access ends for a past_due subscription (the grace period), if it is granted.
    grace_end: datetime | None = None
    # When a purchase's access ends (its duration), if it is granted and ends.
    expires: datetime | None = None


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
    suspended: bool = False,
    pause: Pause | None = None,
    period_voided: bool = False,
) -> Access:
    """The entitlement policy: whether a subscription in `status` grants its features at `now`.

    active grants; trialing grants, unless the trial waits for a payment method (made to end
    unpaid without one, and none saved: `subscription_rules.awaits_payment_method`); past_due grants for `grace` from when it became past_due (from
    the period end when that is unknown); unpaid, canceled, incomplete, incomplete_expired and
    paused do not. Nothing is granted once a planned cancellation (`cancel_at`) has passed, even
    before the mirror hears of it, nor while `suspended` (a disputed payment, under
    BILLING_DISPUTE_POLICY=suspend). While collection is paused with behavior `void`, nothing
    is granted from the end of the period paid before the pause (`pause.access_end`, even
    before the mirror hears of the renewal; at once when unknown) until `pause.resumes_at`;
    nor during a period whose invoice such a pause voided (`period_voided`: unpaid, even once
    the pause has ended, until the next period). `keep_as_draft` and `mark_uncollectible`
    pauses (an operator's grace) keep access.
    """
    if suspended or period_voided or (cancel_at is not None and now >= cancel_at):
        return Access(granted=False)
    if _paused_out(pause, now):
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


def _paused_out(pause: Pause | None, now: datetime) -> bool:
    """Whether a pause that stops the service holds the subscription out of access at `now`."""
    if pause is None or pause.behavior != PAUSE_STOPS_SERVICE:
        return False
    if pause.resumes_at is not None and now >= pause.resumes_at:
        return False
    return pause.access_end is None or now >= pause.access_end


def purchase_access(
    *, status: str, now: datetime, paid_at: datetime, duration: timedelta | None
) -> Access:
    """The entitlement policy for a one-time purchase whose state is `status` (see
    `purchases.purchase_status`): it grants for `duration` from `paid_at` (None: for good) while
    paid and neither fully refunded nor disputed; a dispute won gives the grant back."""
    if status not in GRANTING_STATUSES:
        return Access(granted=False)
    if duration is None:
        return Access(granted=True)
    end = paid_at + duration
    return Access(granted=True, expires=end) if now < end else Access(granted=False)


def purchase_duration(metadata: dict[str, str]) -> timedelta | None:
    """How long a product bought once grants its features: metadata `duration_days` (a whole
    number of days, at least 1), or None for good. ValueError when malformed."""
    days = metadata.get("duration_days", "").strip()
    if not days:
        return None
    if not days.isdigit() or int(days) < 1:
        raise ValueError(f"duration_days must be a whole number of days ≥ 1, not {days!r}")
    return timedelta(days=int(days))


class _Grant(NamedTuple):
    """A row of `_GRANTS`: a subscription's columns, or a purchase's."""

    kind: str  # "subscription" or "purchase"
    source_id: str  # the subscription's id, or the purchase's payment intent
    status: str | None
    cancel_at: datetime | None
    past_due_since: datetime | None
    current_period_end: datetime | None
    metadata: dict[str, str]
    disputed: bool
    # A subscription's trial end without a payment method, and whether one is saved.
    trial_missing_payment_method: str | None
    payment_method: bool
    amount: int
    amount_refunded: int
    dispute_status: str | None
    paid_at: datetime | None
    # A subscription's paused collection (see `Pause`); null when collecting.
    pause_behavior: str | None
    pause_resumes_at: datetime | None
    pause_access_end: datetime | None
    # Whether its current period began in a void pause (its invoice voided): unpaid.
    period_voided: bool


@dataclass(frozen=True, slots=True)
class EntitlementRecord:
    feature: str
    # What grants it: a subscription (with its status), or a one-time purchase.
    subscription_id: str | None
    subscription_status: str | None
    grace_end: datetime | None
    payment_intent_id: str | None = None
    expires: datetime | None = None
    # The granting product's `limits.<feature>` (usage per period), if it sets one.
    limit: int | None = None

    @property
    def ends(self) -> datetime | None:
        """When this grant ends; None: not while its subscription or purchase stands."""
        return self.grace_end or self.expires


def _preferred(a: EntitlementRecord, b: EntitlementRecord) -> EntitlementRecord:
    """Of two grants of one feature, the one lasting longer (no end lasts longest)."""
    if a.ends is None or (b.ends is not None and a.ends >= b.ends):
        return a
    return b


def _verdict(
    grant: _Grant, *, now: datetime, grace: timedelta, dispute_policy: DisputePolicy
) -> Access:
    if grant.kind == "subscription":
        assert grant.status is not None  # a subscription's row has its status
        return access(
            status=grant.status,
            now=now,
            cancel_at=grant.cancel_at,
            past_due_since=grant.past_due_since,
            current_period_end=grant.current_period_end,
            grace=grace,
            trial_missing_payment_method=grant.trial_missing_payment_method,
            payment_method=grant.payment_method,
            suspended=grant.disputed and dispute_policy == "suspend",
            pause=None
            if grant.pause_behavior is None
            else Pause(grant.pause_behavior, grant.pause_resumes_at, grant.pause_access_end),
            period_voided=grant.period_voided,
        )
    assert grant.paid_at is not None  # a purchase's row has its time of payment
    try:
        duration = purchase_duration(grant.metadata)
    except ValueError as e:  # the catalog's mistake: grant nothing rather than forever
        log.warning(
            "a purchase's product has a malformed duration_days",
            extra={"fields": {"payment_intent": grant.source_id, "error": str(e)}},
        )
        return Access(granted=False)
    status = purchase_status(
        amount=grant.amount,
        amount_refunded=grant.amount_refunded,
        dispute_status=grant.dispute_status,
    )
    return purchase_access(status=status, now=now, paid_at=grant.paid_at, duration=duration)


async def list_entitlements(
    *,
    engine: AsyncEngine,
    principal: Principal,
    grace: timedelta,
    dispute_policy: DisputePolicy = "keep",
) -> list[EntitlementRecord]:
    """The features the principal may use now, each with the subscription or purchase that
    grants it (of several, the one lasting longest)."""
    params = (list(SUSPENDING_DISPUTE_STATUSES), principal.key, _GRANTING, principal.key)
    grants = await fetch_all(engine, _GRANTS, params, _Grant)
    now = datetime.now(UTC)
    granted: dict[str, EntitlementRecord] = {}
    for grant in grants:
        verdict = _verdict(grant, now=now, grace=grace, dispute_policy=dispute_policy)
        if not verdict.granted:
            continue
        subscription = grant.kind == "subscription"
        for feature in entitlement_keys(grant.metadata):
            record = EntitlementRecord(
                feature=feature,
                subscription_id=grant.source_id if subscription else None,
                subscription_status=grant.status,
                grace_end=verdict.grace_end,
                payment_intent_id=None if subscription else grant.source_id,
                expires=verdict.expires,
                limit=feature_limit(grant.metadata, feature),
            )
            granted[feature] = _preferred(granted.get(feature, record), record)
    return sorted(granted.values(), key=lambda record: record.feature)


async def check_entitlement(
    *,
    engine: AsyncEngine,
    principal: Principal,
    feature: str,
    grace: timedelta,
    dispute_policy: DisputePolicy = "keep",
) -> EntitlementRecord | None:
    """The principal's entitlement to `feature`, or None."""
    if not _FEATURE.fullmatch(feature):
        raise InvalidArgument("feature must be a feature key such as video_library")
    entitlements = await list_entitlements(
        engine=engine, principal=principal, grace=grace, dispute_policy=dispute_policy
    )
    return next((e for e in entitlements if e.feature == feature), None)
