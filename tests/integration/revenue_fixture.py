"""A hand-computed fixture of the revenue metrics: rows written into a billing mirror of its own
(real Postgres), and the figures worked out by hand from them for 2025-03-01 … 2025-03-10.

The catalog: Basic (USD 10.00 a month; USD 102.00 a year), Pro (USD 7.00 a week; USD 90.00
every 3 months; BRL 49.90 a month), a free plan and a metered price (left out of every figure),
and a one-time Kit (USD 25.00).

The subscriptions, and what each is worth per month (minor units):
- sub_a  cus_a  Basic monthly, active since February ............................... 1000
- sub_b  cus_b  Basic yearly, quantity 2, new 03-03 10:00; a once-only 25 % discount (no effect)  1700
- sub_c  cus_c  Pro weekly, canceled 03-05 12:00 (churn) ............ 700 * 52 / 12 = 3033⅓
- sub_d  cus_c  Pro every 3 months, 03-08 09:00: cus_c comes back (reactivation) ..... 3000
- sub_e  cus_e  Pro BRL, trial 02-20 → 03-06 08:00, converted (paid 39.92); forever 20 %  3992 BRL
- sub_f  cus_f  Basic monthly, trial 03-02 10:00 → 03-09 10:00, canceled then (not converted;
               its 0.00 invoice paid nothing)
- sub_g  cus_g  Basic monthly; repeating 50 % until 03-04 .......... 500 to 03-03, then 1000
- sub_h  cus_h  Basic monthly, new 03-01 15:00, past_due; forever USD 3.00 off ........... 700
- sub_i  cus_i  the free plan (left out)          - sub_j  cus_j  incomplete_expired (never paid)
- sub_k  cus_k  the metered price (left out)      - sub_l  cus_l  trialing since 03-07
- sub_m  cus_m  Basic monthly, unpaid since the period that began 03-05 00:00 (churn) .... 1000
- sub_n  cus_n  Basic monthly, canceled 2025-01-15 (before the range: nothing in it)
- sub_o  cus_o  Basic monthly since February ............................................ 1000
               upgraded 03-04 09:00 to Pro every 3 months .................................. 3000
               downgraded 03-07 00:00 (a schedule, at its period end) to Basic yearly ........ 850
               (its row updated as the mirror does: billing.subscription_terms records each)

USD MRR: 03-01 and 03-02: 1000 + 3033⅓ + 500 + 700 + 1000 + 1000 (o) = 7233⅓ → 7233; 03-03:
+ 1700 → 8933; 03-04: g at 1000, o at 3000 → 11433; 03-05 and 03-06: c and m gone → 7400; 03-07:
o at 850 → 5250; 03-08 on: + 3000 → 8250. Over all plans o is neither new nor churned by its
changes; by plan, it churns from Basic and is new in Pro on 03-04, the other way round on 03-07.
The charges: sub_b's invoice USD 204.00 on 03-03 (50.00 refunded since); the Kit USD 25.00 on
03-04 (refunded in full); a failed USD 10.00 on 03-04 (not revenue); USD 7.00 on 03-09 that
pays for nothing billing knows (plan ""); sub_e's invoice BRL 39.92 on 03-06 (its PaymentIntent
not recorded on the invoice: the plan is that of its customer's subscription); sub_o's
upgrade, invoiced USD 20.00 on 03-04 09:00: Pro's revenue, the plan it paid for then (sub_o is
on Basic now).
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.models import (
    charges,
    discounts,
    invoices,
    prices,
    products,
    purchases,
    subscriptions,
)

SINCE = date(2025, 3, 1)
UNTIL = date(2025, 3, 10)
DAYS = [SINCE + timedelta(days=n) for n in range(10)]


def at(day: int, hour: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


def _price(
    id: str,
    product: str,
    amount: int,
    currency: str,
    interval: str | None,
    count: int | None,
    **more: Any,
) -> dict[str, Any]:
    kind = "one_time" if interval is None else "recurring"
    return dict(
        id=id,
        product_id=product,
        unit_amount=amount,
        currency=currency,
        type=kind,
        interval=interval,
        interval_count=count,
        active=True,
        **more,
    )


PRODUCTS = [
    {"id": "prod_basic", "name": "Basic", "active": True},
    {"id": "prod_pro", "name": "Pro", "active": True},
    {"id": "prod_free", "name": "Free", "active": True},
    {"id": "prod_kit", "name": "Kit", "active": True},
]
PRICES = [
    _price("price_basic_m", "prod_basic", 1000, "usd", "month", 1),
    _price("price_basic_y", "prod_basic", 10200, "usd", "year", 1),
    _price("price_pro_w", "prod_pro", 700, "usd", "week", 1),
    _price("price_pro_q", "prod_pro", 9000, "usd", "month", 3),
    _price("price_pro_brl", "prod_pro", 4990, "brl", "month", 1),
    _price("price_free", "prod_free", 0, "usd", "month", 1),
    _price("price_metered", "prod_pro", 5, "usd", "month", 1, usage_type="metered"),
    _price("price_kit", "prod_kit", 2500, "usd", None, None),
]


def sub(
    id: str, customer: str, price: str, status: str, created: datetime, **more: Any
) -> dict[str, Any]:
    return dict(
        id=id,
        stripe_customer_id=customer,
        price_id=price,
        quantity=more.pop("quantity", 1),
        status=status,
        created=created,
        cancel_at_period_end=False,
        source_event_created=created,
        **more,
    )


SUBSCRIPTIONS = [
    sub("sub_a", "cus_a", "price_basic_m", "active", at(1, month=2)),
    sub(
        "sub_b", "cus_b", "price_basic_y", "active", at(3, 10), quantity=2, discount_ids=["di_once"]
    ),
    sub(
        "sub_c",
        "cus_c",
        "price_pro_w",
        "canceled",
        at(15, month=2),
        ended_at=at(5, 12),
        canceled_at=at(5, 12),
    ),
    sub("sub_d", "cus_c", "price_pro_q", "active", at(8, 9)),
    sub(
        "sub_e",
        "cus_e",
        "price_pro_brl",
        "active",
        at(20, month=2),
        trial_start=at(20, month=2),
        trial_end=at(6, 8),
        discount_ids=["di_forever_pct"],
    ),
    sub(
        "sub_f",
        "cus_f",
        "price_basic_m",
        "canceled",
        at(2, 10),
        trial_start=at(2, 10),
        trial_end=at(9, 10),
        ended_at=at(9, 10),
        canceled_at=at(9, 10),
    ),
    sub(
        "sub_g", "cus_g", "price_basic_m", "active", at(10, month=2), discount_ids=["di_repeating"]
    ),
    sub("sub_h", "cus_h", "price_basic_m", "past_due", at(1, 15), discount_ids=["di_forever_off"]),
    sub("sub_i", "cus_i", "price_free", "active", at(2)),
    sub("sub_j", "cus_j", "price_basic_m", "incomplete_expired", at(2)),
    sub("sub_k", "cus_k", "price_metered", "active", at(2)),
    sub(
        "sub_l",
        "cus_l",
        "price_basic_m",
        "trialing",
        at(7),
        trial_start=at(7),
        trial_end=at(7, month=4),
    ),
    sub("sub_m", "cus_m", "price_basic_m", "unpaid", at(5, month=1), current_period_start=at(5)),
    sub(
        "sub_n",
        "cus_n",
        "price_basic_m",
        "canceled",
        datetime(2024, 12, 1, tzinfo=UTC),
        ended_at=datetime(2025, 1, 15, tzinfo=UTC),
    ),
    sub("sub_o", "cus_o", "price_basic_m", "active", at(1, month=2)),
]
# sub_o's plan changes, as the mirror writes them: its row updated, stamped with the Stripe time
# of the event that showed the change.
CHANGES = [
    ("sub_o", {"price_id": "price_pro_q", "source_event_created": at(4, 9)}),
    ("sub_o", {"price_id": "price_basic_y", "source_event_created": at(7)}),
]


def _discount(id: str, duration: str, start: datetime, **more: Any) -> dict[str, Any]:
    return dict(id=id, coupon_id="co_" + id, duration=duration, start=start, **more)


DISCOUNTS = [
    _discount("di_once", "once", at(3, 10), percent_off=Decimal(25)),
    _discount("di_forever_pct", "forever", at(20, month=2), percent_off=Decimal(20)),
    _discount(
        "di_repeating",
        "repeating",
        at(10, month=2),
        percent_off=Decimal(50),
        duration_in_months=1,
        end=at(4, 6),
    ),
    _discount("di_forever_off", "forever", at(1, 15), amount_off=300, currency="usd"),
]


def _invoice(
    id: str,
    sub: str,
    customer: str,
    paid: int,
    currency: str,
    created: datetime,
    intent: str | None,
) -> dict[str, Any]:
    return {
        "id": id,
        "stripe_customer_id": customer,
        "subscription_id": sub,
        "status": "paid",
        "currency": currency,
        "amount_due": paid,
        "amount_paid": paid,
        "amount_remaining": 0,
        "total": paid,
        "total_excluding_tax": paid,
        "created": created,
        "source_event_created": created,
        "payment_intent_id": intent,
    }


INVOICES = [
    _invoice("in_b", "sub_b", "cus_b", 20400, "usd", at(3, 10), "pi_b"),
    # Its payment not recorded: the charge goes to its customer's subscription.
    _invoice("in_e", "sub_e", "cus_e", 3992, "brl", at(6, 8), None),
    _invoice("in_f", "sub_f", "cus_f", 0, "usd", at(2, 10), "pi_f"),
    _invoice("in_o", "sub_o", "cus_o", 2000, "usd", at(4, 9), "pi_o"),
]
PURCHASES = [
    {
        "id": "pi_kit",
        "stripe_customer_id": "cus_a",
        "price_id": "price_kit",
        "quantity": 1,
        "amount": 2500,
        "currency": "usd",
        "status": "succeeded",
        "created": at(4, 11),
        "source_event_created": at(4, 11),
    },
]


def _charge(
    id: str, intent: str, amount: int, refunded: int, currency: str, status: str, created: datetime
) -> dict[str, Any]:
    return {
        "id": id,
        "payment_intent_id": intent,
        "amount": amount,
        "amount_refunded": refunded,
        "currency": currency,
        "status": status,
        "created": created,
        "source_event_created": created,
    }


CHARGES = [
    _charge("ch_b", "pi_b", 20400, 5000, "usd", "succeeded", at(3, 10)),
    _charge("ch_kit", "pi_kit", 2500, 2500, "usd", "succeeded", at(4, 11)),
    _charge("ch_failed", "pi_failed", 1000, 0, "usd", "failed", at(4, 12)),
    _charge("ch_other", "pi_other", 700, 0, "usd", "succeeded", at(9, 13)),
    _charge("ch_o", "pi_o", 2000, 0, "usd", "succeeded", at(4, 9)),
    {
        **_charge("ch_e", "pi_e", 3992, 0, "brl", "succeeded", at(6, 8)),
        "stripe_customer_id": "cus_e",
    },
]


async def write_fixture(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for table, rows in (
            (products, PRODUCTS),
            (prices, PRICES),
            (discounts, DISCOUNTS),
            (invoices, INVOICES),
            (purchases, PURCHASES),
            (charges, CHARGES),
            (subscriptions, SUBSCRIPTIONS),
        ):
            for row in rows:  # rows with different columns: one statement each
                await conn.execute(insert(table).values(**row))
        for id, values in CHANGES:
            await conn.execute(
                update(subscriptions).where(subscriptions.c.id == id).values(**values)
            )


def _by_day(**figures: dict[int, int]) -> dict[date, dict[str, int]]:
    """{field: {day of March: value}} → {day: {field: value}}, 0 where not given."""
    return {day: {name: values.get(day.day, 0) for name, values in figures.items()} for day in DAYS}


def _every(value: int, first: int = 1, last: int = 10) -> dict[int, int]:
    return dict.fromkeys(range(first, last + 1), value)


# USD over all plans, day by day.
USD_TOTALS = _by_day(
    mrr={
        1: 7233,
        2: 7233,
        3: 8933,
        4: 11433,
        5: 7400,
        6: 7400,
        7: 5250,
        8: 8250,
        9: 8250,
        10: 8250,
    },
    active={1: 6, 2: 6, 3: 7, 4: 7, 5: 5, 6: 5, 7: 5, 8: 6, 9: 6, 10: 6},
    trialing={**_every(1, 2, 6), 7: 2, 8: 2, 9: 1, 10: 1},
    new={1: 1, 3: 1},
    reactivated={8: 1},
    churned={5: 2},
    trials_started={2: 1, 7: 1},
    trials_ended={9: 1},
    trials_converted={},
    gross_revenue={3: 20400, 4: 2500 + 2000, 9: 700},
    refunds={3: 5000, 4: 2500},
)
# BRL over all plans: sub_e alone.
BRL_TOTALS = _by_day(
    mrr=_every(3992, 6),
    active=_every(1, 6),
    trialing=_every(1, 1, 5),
    new={6: 1},
    reactivated={},
    churned={},
    trials_started={},
    trials_ended={6: 1},
    trials_converted={6: 1},
    gross_revenue={6: 3992},
    refunds={},
)
# USD by plan: Basic and Pro MRR (3033⅓ rounds on its own), revenue of the Kit and of no plan.
USD_BASIC_MRR = {
    1: 4200,
    2: 4200,
    3: 5900,
    4: 5400,
    5: 4400,
    6: 4400,
    7: 5250,
    8: 5250,
    9: 5250,
    10: 5250,
}
USD_PRO_MRR = {
    1: 3033,
    2: 3033,
    3: 3033,
    4: 6033,
    5: 3000,
    6: 3000,
    7: 0,
    8: 3000,
    9: 3000,
    10: 3000,
}
# USD by plan: new, reactivated and churned subscriptions (sub_o moving between the plans).
USD_BASIC_MOVES = _by_day(new={1: 1, 3: 1, 7: 1}, reactivated={}, churned={4: 1, 5: 1})
USD_PRO_MOVES = _by_day(new={4: 1}, reactivated={8: 1}, churned={5: 1, 7: 1})
