"""The revenue figures' arithmetic on subscriptions built in memory (the mirror's queries and
the whole fixture are in tests/integration/test_billing_revenue.py)."""

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

from services.billing.revenue.figures import Discount, Subscription, Term, revenue_figures


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


TERM = Term(
    since=at(1, 1),
    plan="prod_1",
    currency="usd",
    unit_amount=1200,
    quantity=1,
    interval="month",
    interval_count=1,
)
MONTHLY = Subscription(
    id="sub_1",
    customer="cus_1",
    status="active",
    created=at(1, 1),
    trial_start=None,
    trial_end=None,
    ended_at=None,
    current_period_start=None,
    paid_invoice=True,
    terms=(TERM,),
)


def priced(sub: Subscription = MONTHLY, **terms: object) -> Subscription:
    """`sub` on one term: TERM with `terms` changed."""
    return replace(sub, terms=(replace(TERM, **terms),))  # type: ignore[arg-type]


def off(duration: str, start: datetime, end: datetime | None = None, **terms: object) -> Discount:
    values: dict[str, object] = {"percent_off": None, "amount_off": None, "currency": None}
    values.update(terms)
    return Discount(duration=duration, start=start, end=end, **values)  # type: ignore[arg-type]


def test_each_interval_is_normalised_to_a_month_with_its_count() -> None:
    day = date(2025, 3, 1)
    assert MONTHLY.mrr_on(day) == 1200
    assert priced(interval="year").mrr_on(day) == 100
    assert priced(interval="week", interval_count=2).mrr_on(day) == Fraction(1200 * 52, 12 * 2)
    assert priced(interval="day", unit_amount=12).mrr_on(day) == 365
    assert priced(interval_count=3, quantity=2).mrr_on(day) == 800


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
        priced(interval="year"),
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
        priced(replace(MONTHLY, id="s4"), unit_amount=0),
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


def _by_series(subs: list[Subscription], until: int) -> dict[str | None, list[tuple[int, ...]]]:
    """{plan (None: all): [(mrr, active, new, churned) for each day of 2025-03-01 … 03-`until`]}"""
    rows = revenue_figures(subs, [], since=date(2025, 3, 1), until=date(2025, 3, until))
    found: dict[str | None, list[tuple[int, ...]]] = {}
    for r in rows:
        found.setdefault(r.plan, []).append((r.mrr, r.active, r.new, r.churned))
    return found


def test_mrr_and_plans_follow_the_term_of_each_day() -> None:
    """Upgraded to prod_2 on 03-02 at 10:00, moved back to prod_1 with 2 seats on 03-04: each
    day counts the term in effect at its end; a plan change churns the subscription from the
    plan it leaves and makes it new in the one it joins, and over all plans only moves MRR."""
    changed = replace(
        MONTHLY,
        terms=(
            TERM,
            replace(TERM, since=at(3, 2, 10), plan="prod_2", unit_amount=3000),
            replace(TERM, since=at(3, 4), quantity=2),
        ),
    )
    assert _by_series([changed], until=5) == {
        "prod_1": [(1200, 1, 0, 0), (0, 0, 0, 1), (0, 0, 0, 0), (2400, 1, 1, 0), (2400, 1, 0, 0)],
        "prod_2": [(0, 0, 0, 0), (3000, 1, 1, 0), (3000, 1, 0, 0), (0, 0, 0, 1), (0, 0, 0, 0)],
        None: [(1200, 1, 0, 0), (3000, 1, 0, 0), (3000, 1, 0, 0), (2400, 1, 0, 0), (2400, 1, 0, 0)],
    }


def test_terms_before_the_range_and_on_one_day_count_as_the_last_of_them() -> None:
    """The first day of a range counts the term then in effect; of two terms on one day, the
    later holds at its end; a change of quantity within a plan only moves MRR."""
    changed = replace(
        MONTHLY,
        terms=(
            TERM,
            replace(TERM, since=at(2, 10), quantity=3),
            replace(TERM, since=at(3, 2, 8), quantity=5),
            replace(TERM, since=at(3, 2, 20), quantity=4),
        ),
    )
    assert _by_series([changed], until=2) == {
        "prod_1": [(3600, 1, 0, 0), (4800, 1, 0, 0)],
        None: [(3600, 1, 0, 0), (4800, 1, 0, 0)],
    }
    assert changed.term_on(date(2024, 12, 31)) == TERM  # before the first: the first


def test_a_subscription_that_moves_onto_a_free_plan_churns_and_back_is_new() -> None:
    changed = replace(
        MONTHLY,
        terms=(
            TERM,
            replace(TERM, since=at(3, 2), plan="prod_free", unit_amount=0),
            replace(TERM, since=at(3, 3), plan="prod_1"),
        ),
    )
    assert _by_series([changed], until=3)[None] == [
        (1200, 1, 0, 0),
        (0, 0, 0, 1),
        (1200, 1, 1, 0),
    ]


def test_a_trial_that_changes_plan_ends_in_the_plan_of_its_last_day() -> None:
    trial = replace(
        MONTHLY,
        status="trialing",
        created=at(3, 1),
        trial_start=at(3, 1),
        trial_end=at(4, 1),
        terms=(replace(TERM, since=at(3, 1)), replace(TERM, since=at(3, 2, 12), plan="prod_2")),
    )
    rows = revenue_figures([trial], [], since=date(2025, 3, 1), until=date(2025, 3, 2))
    got = {(r.plan, r.day.day): (r.trialing, r.trials_started) for r in rows}
    assert got == {
        ("prod_1", 1): (1, 1),
        ("prod_1", 2): (0, 0),
        ("prod_2", 1): (0, 0),
        ("prod_2", 2): (1, 0),
        (None, 1): (1, 1),
        (None, 2): (1, 0),
    }
