"""What the revenue figures read from the mirror: the subscriptions that matter to a range of
days with their terms (each price and quantity they had, and since when) and discounts, the
charges made in it, and the plans' names."""

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing.errors import InvalidArgument
from services.billing.models import (
    charges,
    customers,
    discounts,
    invoices,
    prices,
    products,
    purchases,
)
from services.billing.models import subscriptions as subs
from services.billing.revenue.figures import (
    Charge,
    DayFigures,
    Discount,
    Subscription,
    Term,
    revenue_figures,
)
from services.billing.revenue.tables import subscription_terms as terms

# The longest range one call computes (about three years of days).
MAX_DAYS = 1100


@dataclass(frozen=True, slots=True)
class RevenueReport:
    """The figures of a range of days and the names of the plans they mention."""

    since: date
    until: date
    rows: list[DayFigures]
    plan_names: dict[str, str]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def check_range(since: date, until: date) -> None:
    """Refuse a range that is empty or longer than MAX_DAYS."""
    if until < since:
        raise InvalidArgument("`until` is before `since`")
    if (until - since).days + 1 > MAX_DAYS:
        raise InvalidArgument(f"a range of at most {MAX_DAYS} days, please")


async def revenue_report(*, engine: AsyncEngine, since: date, until: date) -> RevenueReport:
    """The figures of each day of [since, until] (UTC), from the mirror as it is now."""
    check_range(since, until)
    async with engine.connect() as conn:
        held = await _subscriptions(conn, _midnight(since))
        made = await _charges(conn, _midnight(since), _midnight(until + timedelta(days=1)))
        names = await _plan_names(conn)
    rows = revenue_figures(held, made, since=since, until=until)
    return RevenueReport(since, until, rows, names)


def _paid_invoice() -> Any:
    return exists().where(
        invoices.c.subscription_id == subs.c.id,
        invoices.c.status == "paid",
        invoices.c.amount_paid > 0,
    )


async def _subscriptions(conn: AsyncConnection, since: datetime) -> list[Subscription]:
    """Subscriptions that may count in a range from `since`, with their terms and discounts:
    those not ended before it, and every one of the customers who (re)start paying in it (so
    that a return after churn is told from a first subscription)."""
    starting = select(subs.c.stripe_customer_id).where(
        func.coalesce(subs.c.trial_end, subs.c.created) >= since
    )
    held = or_(
        subs.c.ended_at.is_(None),
        subs.c.ended_at >= since,
        subs.c.stripe_customer_id.in_(starting),
    )
    query = select(
        subs.c.id,
        subs.c.stripe_customer_id,
        subs.c.status,
        subs.c.created,
        subs.c.trial_start,
        subs.c.trial_end,
        func.coalesce(subs.c.ended_at, subs.c.canceled_at),
        subs.c.current_period_start,
        _paid_invoice(),
        subs.c.discount_ids,
    ).where(held)
    rows = (await conn.execute(query)).all()
    terms = await _terms(conn, select(subs.c.id).where(held))
    ids = sorted({d for row in rows for d in row[-1]})
    found = await _discounts(conn, ids)
    return [
        replace(
            Subscription(*row[:-1]),
            terms=tuple(terms.get(row[0], ())),
            discounts=tuple(found[d] for d in row[-1] if d in found),
        )
        for row in rows
    ]


async def _terms(conn: AsyncConnection, held: Select[tuple[str]]) -> dict[str, list[Term]]:
    """The terms of the subscriptions `held` selects, in order, each with its price: worth
    nothing unless a licensed per-unit recurring price. A customer bills in one currency
    (Stripe's rule): on a price with a `currency_options` entry for the customer's currency,
    a term is billed in that currency at that option's amount."""
    billed_in = customers.c.currency
    in_option = and_(
        billed_in.is_not(None),
        billed_in != prices.c.currency,
        prices.c.currency_options.has_key(billed_in),
    )
    option_amount = cast(prices.c.currency_options[billed_in]["unit_amount"].astext, BigInteger)
    priced = and_(
        prices.c.type == "recurring",
        prices.c.billing_scheme == "per_unit",
        func.coalesce(prices.c.usage_type, "licensed") != "metered",
        prices.c.unit_amount.is_not(None),
    )
    query = (
        select(
            terms.c.subscription_id,
            terms.c.since,
            func.coalesce(prices.c.product_id, ""),
            func.coalesce(case((in_option, billed_in), else_=prices.c.currency), ""),
            case((~priced, 0), (in_option, option_amount), else_=prices.c.unit_amount),
            func.coalesce(terms.c.quantity, 1),
            func.coalesce(prices.c.interval, "month"),
            func.coalesce(prices.c.interval_count, 1),
        )
        .join(subs, subs.c.id == terms.c.subscription_id)
        .outerjoin(prices, prices.c.id == terms.c.price_id)
        .outerjoin(customers, customers.c.stripe_customer_id == subs.c.stripe_customer_id)
        .where(terms.c.subscription_id.in_(held))
        .order_by(terms.c.subscription_id, terms.c.since)
    )
    found: dict[str, list[Term]] = defaultdict(list)
    for row in await conn.execute(query):
        found[row[0]].append(Term(*row[1:]))
    return found


async def _discounts(conn: AsyncConnection, ids: list[str]) -> dict[str, Discount]:
    if not ids:
        return {}
    query = select(
        discounts.c.id,
        discounts.c.percent_off,
        discounts.c.amount_off,
        discounts.c.currency,
        discounts.c.duration,
        discounts.c.start,
        discounts.c.end,
    ).where(discounts.c.id.in_(ids))
    return {row[0]: Discount(*row[1:]) for row in await conn.execute(query)}


def _plan_when_charged(subscription_id: Any) -> Any:
    """The product of the subscription's terms in effect when the charge was made (the term
    since the latest change at or before it), as a scalar subquery: NULL without one."""
    return (
        select(prices.c.product_id)
        .select_from(terms)
        .join(prices, prices.c.id == terms.c.price_id)
        .where(terms.c.subscription_id == subscription_id, terms.c.since <= charges.c.created)
        .order_by(terms.c.since.desc())
        .limit(1)
        .scalar_subquery()
    )


async def _charges(conn: AsyncConnection, since: datetime, before: datetime) -> list[Charge]:
    """Succeeded charges made in [since, before), each with the plan it paid for: a purchase's
    price's product; else the plan, when the charge was made (its terms then), of the
    subscription of the invoice whose payment it was; else (since API version 2025-03-31 a
    charge names no invoice, and billing records an invoice's PaymentIntent only when it fetched
    one) that of the customer's subscription started last before the charge, a principal holding
    one live subscription at a time; "" without any. A subscription without terms as old as the
    charge counts on its current price's product."""
    bought = prices.alias("bought")
    invoiced = prices.alias("invoiced")
    invoiced_subscription = subs.alias("invoiced_subscription")
    latest = (
        select(subs.c.id, prices.c.product_id)
        .join(prices, prices.c.id == subs.c.price_id)
        .where(
            subs.c.stripe_customer_id == charges.c.stripe_customer_id,
            subs.c.created <= charges.c.created,
        )
        .order_by(subs.c.created.desc())
        .limit(1)
        .lateral("latest")
    )
    query = (
        select(
            charges.c.created,
            charges.c.currency,
            func.coalesce(
                bought.c.product_id,
                _plan_when_charged(invoiced_subscription.c.id),
                invoiced.c.product_id,
                _plan_when_charged(latest.c.id),
                latest.c.product_id,
                cast(literal(""), String),
            ),
            charges.c.amount,
            charges.c.amount_refunded,
        )
        .select_from(charges)
        .outerjoin(purchases, purchases.c.id == charges.c.payment_intent_id)
        .outerjoin(bought, bought.c.id == purchases.c.price_id)
        .outerjoin(invoices, invoices.c.payment_intent_id == charges.c.payment_intent_id)
        .outerjoin(invoiced_subscription, invoiced_subscription.c.id == invoices.c.subscription_id)
        .outerjoin(invoiced, invoiced.c.id == invoiced_subscription.c.price_id)
        .outerjoin(latest, true())
        .where(
            charges.c.status == "succeeded",
            and_(charges.c.created >= since, charges.c.created < before),
        )
    )
    return [Charge(*row) for row in await conn.execute(query)]


async def _plan_names(conn: AsyncConnection) -> dict[str, str]:
    return {row.id: row.name for row in await conn.execute(select(products.c.id, products.c.name))}
