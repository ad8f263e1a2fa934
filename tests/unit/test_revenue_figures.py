"""The revenue figures' arithmetic on subscriptions built in memory (the mirror's queries and
the whole fixture are in tests/integration/test_billing_revenue.py)."""

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

from services.billing.revenue.figures import Discount, Subscription, revenue_figures


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


MONTHLY = Subscription(
    id="sub_1",
    customer="cus_1",
    plan="prod_1",
    currency="usd",
    unit_amount=1200,
    quantity=1,
    interval="month",
    interval_count=1,
    status="active",
    created=at(1, 1),
    trial_start=None,
    trial_end=None,
    ended_at=None,
    current_period_start=None,
    paid_invoice=True,
)


def off(duration: str, start: datetime, end: datetime | None = None, **terms: object) -> Discount:
    values: dict[str, object] = {"percent_off": None, "amount_off": None, "currency": None}
    values.update(terms)
    return Discount(duration=duration, start=start, end=end, **values)  # type: ignore[arg-type]


def test_each_interval_is_normalised_to_a_month_with_its_count() -> None:
    day = date(2025, 3, 1)
    assert MONTHLY.mrr_on(day) == 1200
    assert replace(MONTHLY, interval="year").mrr_on(day) == 100
    assert replace(MONTHLY, interval="week", interval_count=2).mrr_on(day) == Fraction(
        1200 * 52, 12 * 2
    )
    assert replace(MONTHLY, interval="day", unit_amount=12).mrr_on(day) == 365
    assert replace(MONTHLY, interval_count=3, quantity=2).mrr_on(day) == 800


def test_discounts_stack_in_order_in_their_own_currency_and_never_below_zero() -> None:
    day = date(2025, 3, 1)
    half_then_100 = replace(
        MONTHLY,
        discounts=(
            off("forever", at(1, 1), percent_off=Decimal(50)),
            off("forever", at(1, 1), amount_off=100, currency="usd"),
            off("forever", at(1, 1), amount_off=100, currency="eur"),  # another currency
        ),
    )
    assert half_then_100.mrr_on(day) == 500
    too_much = replace(
        MONTHLY, discounts=(off("forever", at(1, 1), amount_off=5000, currency="usd"),)
    )
    assert too_much.mrr_on(day) == 0
    # A yearly price's amount off is per year, so per month a twelfth of it.
    yearly = replace(
        MONTHLY,
        interval="year",
        discounts=(off("forever", at(1, 1), amount_off=120, currency="usd"),),
    )
    assert yearly.mrr_on(day) == 90
    # Not yet started, once-only, and ended discounts take nothing off.
    for later in (
        off("forever", at(3, 2), percent_off=Decimal(50)),
        off("once", at(1, 1), percent_off=Decimal(50)),
        off("repeating", at(1, 1), at(3, 1), percent_off=Decimal(50)),
    ):
        assert replace(MONTHLY, discounts=(later,)).mrr_on(day) == 1200


def test_a_range_that_starts_after_a_discount_ended_counts_the_full_amount() -> None:
    sub = replace(
        MONTHLY, discounts=(off("repeating", at(1, 1), at(2, 1), percent_off=Decimal(25)),)
    )
    [row] = [
        r
        for r in revenue_figures([sub], [], since=date(2025, 3, 1), until=date(2025, 3, 1))
        if r.plan is None
    ]
    assert (row.mrr, row.active, row.new) == (1200, 1, 0)


def test_a_subscription_that_starts_and_ends_on_one_day_is_new_and_churned_never_active() -> None:
    gone = replace(MONTHLY, status="canceled", created=at(3, 2, 9), ended_at=at(3, 2, 17))
    rows = [
        r
        for r in revenue_figures([gone], [], since=date(2025, 3, 1), until=date(2025, 3, 3))
        if r.plan is None
    ]
    assert [(r.new, r.churned, r.active, r.mrr) for r in rows] == [
        (0, 0, 0, 0),
        (1, 1, 0, 0),
        (0, 0, 0, 0),
    ]


def test_what_never_paid_counts_nowhere() -> None:
    never = [
        replace(MONTHLY, id="s1", status="incomplete"),
        replace(MONTHLY, id="s2", status="incomplete_expired"),
        replace(MONTHLY, id="s3", status="paused", trial_start=at(1, 1), trial_end=at(2, 1)),
        replace(MONTHLY, id="s4", unit_amount=0),
        # Canceled in its trial.
        replace(
            MONTHLY,
            id="s5",
            status="canceled",
            trial_start=at(1, 1),
            trial_end=at(2, 1),
            ended_at=at(1, 20),
        ),
    ]
    assert [sub.id for sub in never if sub.paying() is not None] == ["s4"]  # free: left out
    rows = revenue_figures(never, [], since=date(2025, 3, 1), until=date(2025, 3, 1))
    assert all(r.mrr == r.active == r.new == r.churned == 0 for r in rows)
