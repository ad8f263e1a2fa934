"""Usage records: what internal services report (RecordUsage), stored once per identifier before
the usage sender sends it to Stripe, and the principal's usage this period (GET /v1/usage), which
also gives an entitlement's remaining balance (`limits.<feature>` in product metadata)."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.principal import Principal
from services.billing.errors import Conflict, InvalidArgument
from services.common.db import fetch_all
from services.common.errors import ErrorReason

# Stripe's window for a meter event's timestamp, and its longest identifier.
PAST_WINDOW = timedelta(days=35)
FUTURE_WINDOW = timedelta(minutes=5)
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,100}")
_LIMIT_PREFIX = "limits."

# One statement, one round trip: the principal's customer and the active meter, the record
# inserted unless its identifier is known, and the known record's terms when it is.
_RECORD = """
WITH customer AS (
    SELECT stripe_customer_id FROM billing.customers WHERE principal = %s
), meter AS (
    SELECT id, event_name FROM billing.meters
    WHERE (event_name = %s OR id = %s) AND status = 'active'
    ORDER BY id LIMIT 1
), inserted AS (
    INSERT INTO billing.usage_records
        (identifier, principal, stripe_customer_id, meter_id, event_name, value, occurred_at,
         recorded_by)
    SELECT %s, %s, customer.stripe_customer_id, meter.id, meter.event_name, %s, %s, %s
    FROM customer, meter
    ON CONFLICT (identifier) DO NOTHING
    RETURNING id
)
SELECT (SELECT stripe_customer_id FROM customer), (SELECT id FROM meter),
       EXISTS (SELECT 1 FROM inserted)
"""
_KNOWN = """
SELECT principal, meter_id, value FROM billing.usage_records WHERE identifier = %s
"""
# The period of the principal's live subscription that started last.
_PERIOD = """
SELECT s.current_period_start, s.current_period_end
FROM billing.subscriptions s
JOIN billing.customers c ON c.stripe_customer_id = s.stripe_customer_id
WHERE c.principal = %s AND s.status = ANY(%s::text[])
  AND s.current_period_start IS NOT NULL AND s.current_period_end IS NOT NULL
ORDER BY s.current_period_start DESC
LIMIT 1
"""
_LIVE = ["active", "trialing", "past_due"]
# Each active meter (or the one named) with the principal's records of the period aggregated by
# its formula; records Stripe refused for good (`failed`) do not count.
_USAGE = """
SELECT m.id, m.event_name, m.display_name, m.formula,
       CASE m.formula
           WHEN 'count' THEN count(u.id)
           WHEN 'last' THEN coalesce((array_agg(u.value ORDER BY u.occurred_at DESC, u.id DESC)
                                      FILTER (WHERE u.id IS NOT NULL))[1], 0)
           ELSE coalesce(sum(u.value), 0)
       END::bigint,
       count(u.id) FILTER (WHERE u.state = 'pending')
FROM billing.meters m
LEFT JOIN billing.usage_records u
  ON u.meter_id = m.id AND u.principal = %s AND u.occurred_at >= %s AND u.occurred_at < %s
 AND u.state <> 'failed'
WHERE m.status = 'active' AND (%s::text IS NULL OR m.event_name = %s)
GROUP BY m.id
ORDER BY m.event_name, m.id
"""


class _Recorded(NamedTuple):
    stripe_customer_id: str | None
    meter_id: str | None
    inserted: bool


class _Known(NamedTuple):
    principal: str
    meter_id: str
    value: int


@dataclass(frozen=True, slots=True)
class MeterUsage:
    meter_id: str
    event_name: str
    display_name: str
    formula: str
    value: int
    pending_records: int


@dataclass(frozen=True, slots=True)
class Usage:
    period_start: datetime
    period_end: datetime
    meters: list[MeterUsage]


@dataclass(frozen=True, slots=True)
class Balance:
    limit: int
    remaining: int


def _checked(
    *, meter: str, value: int, identifier: str, timestamp: datetime | None, now: datetime
) -> datetime:
    """When the usage happened (now when not given), after checking the request as Stripe will."""
    if not meter:
        raise InvalidArgument("meter is required: a meter's event_name or id")
    if not _IDENTIFIER.fullmatch(identifier):
        raise InvalidArgument("identifier must be 1 to 100 visible ASCII characters")
    if value < 0:
        raise InvalidArgument("value must be at least 0")
    at = now if timestamp is None else timestamp
    if not now - PAST_WINDOW <= at <= now + FUTURE_WINDOW:
        raise InvalidArgument(
            "timestamp must be within the past 35 days and at most 5 minutes ahead"
        )
    return at


async def record_usage(
    *,
    engine: AsyncEngine,
    principal: Principal,
    caller: str,
    meter: str,
    value: int,
    identifier: str,
    timestamp: datetime | None,
) -> bool:
    """Store one usage record for the sender; False when `identifier` was already recorded with
    the same principal, meter and value (accepted, counted once). Conflict
    `usage_identifier_reused` when it was recorded with other terms."""
    at = _checked(
        meter=meter, value=value, identifier=identifier, timestamp=timestamp, now=datetime.now(UTC)
    )
    params = (principal.key, meter, meter, identifier, principal.key, value, at, caller)
    [result] = await fetch_all(engine, _RECORD, params, _Recorded)
    if result.stripe_customer_id is None:
        raise Conflict(
            "create the customer first (CreateCustomer)", reason=ErrorReason.CUSTOMER_REQUIRED
        )
    if result.meter_id is None:
        raise InvalidArgument(f"no active meter {meter!r} in the catalog")
    if result.inserted:
        return True
    # Read after the insert gave way: the other record is committed by now.
    [known] = await fetch_all(engine, _KNOWN, (identifier,), _Known)
    if known != _Known(principal.key, result.meter_id, value):
        raise Conflict(
            "this identifier was recorded for another usage",
            reason=ErrorReason.USAGE_IDENTIFIER_REUSED,
        )
    return False


def _month_of(now: datetime) -> tuple[datetime, datetime]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


async def usage_period(*, engine: AsyncEngine, principal: Principal) -> tuple[datetime, datetime]:
    """The current period of the principal's live subscription, else the calendar month (UTC)."""
    rows = await fetch_all(engine, _PERIOD, (principal.key, _LIVE), lambda *row: row)
    if rows:
        start, end = rows[0]
        return start, end
    return _month_of(datetime.now(UTC))


async def _meter_usage(
    engine: AsyncEngine, principal: Principal, period: tuple[datetime, datetime], only: str | None
) -> list[MeterUsage]:
    params = (principal.key, *period, only, only)
    return await fetch_all(engine, _USAGE, params, MeterUsage)


async def get_usage(*, engine: AsyncEngine, principal: Principal) -> Usage:
    """The principal's usage this period, per active meter."""
    period = await usage_period(engine=engine, principal=principal)
    meters = await _meter_usage(engine, principal, period, None)
    return Usage(period_start=period[0], period_end=period[1], meters=meters)


def feature_limit(metadata: dict[str, str], feature: str) -> int | None:
    """Product metadata `limits.<feature>`: a whole number ≥ 0, or None (no limit, or malformed:
    a malformed limit is the catalog's mistake and is not enforced)."""
    raw = metadata.get(_LIMIT_PREFIX + feature, "").strip()
    return int(raw) if raw.isdigit() else None


async def balance(
    *, engine: AsyncEngine, principal: Principal, feature: str, limit: int
) -> Balance:
    """What is left of `limit` this period: the limit less the usage of the meter whose
    event_name is `feature` (no such meter: nothing used)."""
    period = await usage_period(engine=engine, principal=principal)
    used = sum(m.value for m in await _meter_usage(engine, principal, period, feature))
    return Balance(limit=limit, remaining=max(0, limit - used))
