"""Revenue figures by day, currency and plan, computed from what the mirror holds of each
subscription (pure: the rows come from queries.py). The README's "Revenue metrics" section
defines each figure; in short, as Stripe's Billing analytics do by default:

- a subscription pays from the end of its trial (or its start) until it ends: canceled at
  `ended_at`, or `unpaid` from the start of the period it did not pay for; `active` and
  `past_due` are paying, `trialing`, `incomplete`, `incomplete_expired` and `paused` never are;
- MRR is the sum of the monthly-normalised amounts of the paying subscriptions at the end of each
  day (UTC), forever discounts and repeating ones while they last taken off (once-only ones
  never are); free plans and metered prices are left out of every figure;
- each currency is kept apart; amounts are exact fractions until rounded once per figure.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

# Months in one interval of a price (times its interval_count).
_MONTHS_PER_INTERVAL = {
    "day": Fraction(12, 365),
    "week": Fraction(12, 52),
    "month": Fraction(1),
    "year": Fraction(12),
}
# From when to when a subscription paid (or was in its trial); None: it still does.
_Window = tuple[datetime, datetime | None]
# Statuses of a subscription that was paying at some point (until it ended, for the last two).
_PAID_STATUSES = frozenset({"active", "past_due", "canceled", "unpaid"})


@dataclass(frozen=True, slots=True)
class Discount:
    """A discount on a subscription (billing.discounts)."""

    percent_off: Decimal | None
    amount_off: int | None
    currency: str | None
    duration: str  # once, repeating or forever
    start: datetime
    end: datetime | None

    def applies_on(self, day: date) -> bool:
        """Whether it takes MRR off at the end of `day`: forever from its start, repeating
        until its end, once never (it takes one invoice off, not the recurring amount)."""
        if self.duration == "once" or self.start.date() > day:
            return False
        return self.duration == "forever" or self.end is None or day < self.end.date()


@dataclass(frozen=True, slots=True)
class Subscription:
    """What the figures need of one subscription and its (licensed, per-unit) price."""

    id: str
    customer: str
    plan: str  # the product of its price
    currency: str
    unit_amount: int
    quantity: int
    interval: str
    interval_count: int
    status: str
    created: datetime
    trial_start: datetime | None
    trial_end: datetime | None
    ended_at: datetime | None
    current_period_start: datetime | None
    # Whether one of its invoices was paid with money (amount_paid > 0).
    paid_invoice: bool
    discounts: tuple[Discount, ...] = ()

    @property
    def period_amount(self) -> int:
        return self.unit_amount * self.quantity

    def monthly(self, amount: Fraction) -> Fraction:
        """`amount` per interval, per month."""
        return amount / (_MONTHS_PER_INTERVAL[self.interval] * self.interval_count)

    def mrr_on(self, day: date) -> Fraction:
        """Its monthly-normalised amount at the end of `day`, the discounts then in force taken
        off in order (a percentage of what is left; an amount in its own currency only)."""
        amount = self.monthly(Fraction(self.period_amount))
        for discount in self.discounts:
            if not discount.applies_on(day):
                continue
            if discount.percent_off is not None:
                amount *= 1 - Fraction(discount.percent_off) / 100
            elif discount.amount_off is not None and discount.currency == self.currency:
                amount = max(Fraction(0), amount - self.monthly(Fraction(discount.amount_off)))
        return amount

    def paying(self) -> _Window | None:
        """When it paid: from the end of its trial (or its start) to its end; None if never."""
        if self.status not in _PAID_STATUSES:
            return None
        start = self.trial_end or self.created
        end = None
        if self.status == "canceled":
            end = self.ended_at or start
        elif self.status == "unpaid":
            end = self.current_period_start or start
        if end is not None and end <= start:
            return None  # ended in its trial, or as it ended
        return start, end

    def trial(self) -> _Window | None:
        """Its trial, from its start to its end (None while it lasts); None without one."""
        if self.trial_start is None or self.trial_end is None:
            return None
        if self.status == "trialing":
            return self.trial_start, None
        ended = min(self.trial_end, self.ended_at or self.trial_end)
        return self.trial_start, max(ended, self.trial_start)


@dataclass(frozen=True, slots=True)
class Charge:
    """A succeeded charge (billing.charges): an invoice's or a purchase's payment."""

    created: datetime
    currency: str
    plan: str  # "" when it pays for no plan billing knows
    amount: int
    amount_refunded: int


@dataclass(slots=True)
class DayFigures:
    """The figures of one day (UTC) in one currency, for one plan or (plan None) all of them.
    Amounts are minor units of `currency`; counts are subscriptions."""

    day: date
    currency: str
    plan: str | None
    mrr: int = 0
    active: int = 0
    trialing: int = 0
    new: int = 0
    reactivated: int = 0
    churned: int = 0
    trials_started: int = 0
    trials_ended: int = 0
    trials_converted: int = 0
    gross_revenue: int = 0
    refunds: int = 0

    @property
    def arr(self) -> int:
        return self.mrr * 12

    @property
    def net_revenue(self) -> int:
        return self.gross_revenue - self.refunds


@dataclass(slots=True)
class _Series:
    """One (currency, plan)'s running sums over the days of a range: the MRR and the counts
    of active and trialing subscriptions as changes on the day they happen, the rest as is."""

    days: int
    mrr_change: list[Fraction] = field(init=False)
    active_change: list[int] = field(init=False)
    trialing_change: list[int] = field(init=False)
    counts: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mrr_change = [Fraction(0)] * (self.days + 1)
        self.active_change = [0] * (self.days + 1)
        self.trialing_change = [0] * (self.days + 1)

    def count(self, name: str, index: int, value: int = 1) -> None:
        self.counts.setdefault(name, [0] * self.days)[index] += value


def _round(amount: Fraction) -> int:
    """Half up, to a whole minor unit."""
    return int((amount * 2 + 1) // 2)


class _Range:
    def __init__(self, since: date, until: date) -> None:
        self.since = since
        self.days = (until - since).days + 1

    def index(self, day: date) -> int:
        """The position of `day`, clamped to just before or after the range."""
        return min(max((day - self.since).days, -1), self.days)

    def spread(self, change: list[int], start: date, end: date | None) -> None:
        """+1 from `start` (or the range's first day) to the day before `end`."""
        first, last = max(self.index(start), 0), self.days if end is None else self.index(end)
        if first < last:
            change[first] += 1
            change[last] -= 1


def revenue_figures(
    subscriptions: Iterable[Subscription],
    charges: Iterable[Charge],
    *,
    since: date,
    until: date,
) -> list[DayFigures]:
    """Every day of [since, until] for each currency and plan that has a figure in it, then the
    same for each currency over all plans (plan None), in order of plan, currency and day."""
    span = _Range(since, until)
    series: dict[tuple[str, str | None], _Series] = {}

    def each(currency: str, plan: str) -> list[_Series]:
        return [series.setdefault((currency, key), _Series(span.days)) for key in (plan, None)]

    by_customer: dict[str, list[tuple[Subscription, _Window | None]]] = defaultdict(list)
    for sub in subscriptions:
        if sub.period_amount > 0:
            by_customer[sub.customer].append((sub, sub.paying()))
    for held in by_customer.values():
        for sub, window in held:
            targets = each(sub.currency, sub.plan)
            if (trial := sub.trial()) is not None:
                _count_trial(sub, trial, targets, span)
            if window is not None:
                kind = "reactivated" if _returned(sub, window[0], held) else "new"
                _count_paying(sub, window, kind, targets, span)
    for charge in charges:
        if 0 <= (i := span.index(charge.created.date())) < span.days:
            for target in each(charge.currency, charge.plan):
                target.count("gross_revenue", i, charge.amount)
                target.count("refunds", i, charge.amount_refunded)
    return [
        row
        for (currency, plan), one in sorted(series.items(), key=_plan_then_currency)
        for row in _rows(one, currency, plan, since)
    ]


def _plan_then_currency(item: tuple[tuple[str, str | None], _Series]) -> tuple[bool, str, str]:
    (currency, plan), _ = item
    return plan is None, plan or "", currency


def _returned(
    sub: Subscription, start: datetime, held: Sequence[tuple[Subscription, _Window | None]]
) -> bool:
    """Whether the customer had paid before and churned: another of its subscriptions (`held`)
    paid and ended by `start`, and none was paying at `start`."""
    ended_before = paying_then = False
    for other, window in held:
        if other.id == sub.id or window is None:
            continue
        other_start, other_end = window
        if other_end is not None and other_end <= start:
            ended_before = True
        elif other_start <= start:
            paying_then = True
    return ended_before and not paying_then


def _count_trial(
    sub: Subscription,
    trial: _Window,
    targets: list[_Series],
    span: _Range,
) -> None:
    started, ended = trial
    for target in targets:
        span.spread(target.trialing_change, started.date(), ended and ended.date())
        if 0 <= (i := span.index(started.date())) < span.days:
            target.count("trials_started", i)
        if ended is not None and 0 <= (i := span.index(ended.date())) < span.days:
            target.count("trials_ended", i)
            if sub.paid_invoice:
                target.count("trials_converted", i)


def _count_paying(
    sub: Subscription,
    window: _Window,
    kind: str,
    targets: list[_Series],
    span: _Range,
) -> None:
    start, end = window[0].date(), window[1] and window[1].date()
    # The days on which its MRR changes: its start, and each discount's start and end.
    steps = {start} | {d.start.date() for d in sub.discounts}
    steps |= {d.end.date() for d in sub.discounts if d.end is not None}
    steps = {s for s in steps if start <= s and (end is None or s < end)}
    for target in targets:
        span.spread(target.active_change, start, end)
        if 0 <= (i := span.index(start)) < span.days:
            target.count(kind, i)
        if end is not None and 0 <= (i := span.index(end)) < span.days:
            target.count("churned", i)
        if end is not None and end <= span.since:
            continue  # it stopped paying before the range: no MRR in it
        previous = Fraction(0)
        for step in sorted(steps):
            if span.index(step) >= span.days:
                break  # after the range
            amount = sub.mrr_on(max(step, span.since))
            target.mrr_change[max(span.index(step), 0)] += amount - previous
            previous = amount
        if end is not None:
            target.mrr_change[span.index(end)] -= previous


def _rows(one: _Series, currency: str, plan: str | None, since: date) -> Iterable[DayFigures]:
    mrr, active, trialing = Fraction(0), 0, 0
    for i in range(one.days):
        mrr += one.mrr_change[i]
        active += one.active_change[i]
        trialing += one.trialing_change[i]
        row = DayFigures(since + timedelta(days=i), currency, plan, _round(mrr), active, trialing)
        for name, values in one.counts.items():
            setattr(row, name, values[i])
        yield row
