"""Revenue figures by day, currency and plan, computed from what the mirror holds of each
subscription (pure: the rows come from queries.py). The README's "Revenue metrics" section
defines each figure; in short, as Stripe's Billing analytics do by default:

- a subscription pays from the end of its trial (or its start) until it ends: canceled at
  `ended_at`, or `unpaid` from the start of the period it did not pay for; `active` and
  `past_due` are paying, `trialing`, `incomplete`, `incomplete_expired` and `paused` never are;
- MRR is the sum of the monthly-normalised amounts of the paying subscriptions at the end of each
  day (UTC), forever discounts and repeating ones while they last taken off (once-only ones
  never are); free plans and metered prices are left out of every figure;
- each day counts each subscription at the term (price and quantity) in effect at its end, so a
  plan change moves its MRR, and its place in the per-plan figures, from that day on only;
- each currency is kept apart; amounts are exact fractions until rounded once per figure.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
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
class Term:
    """A price and quantity a subscription had from `since` (billing.subscription_terms), with
    what the figures need of the price; worth nothing on a free, metered or tiered price."""

    since: datetime
    plan: str  # the product of its price
    currency: str
    unit_amount: int
    quantity: int
    interval: str
    interval_count: int

    @property
    def period_amount(self) -> int:
        return self.unit_amount * self.quantity

    def monthly(self, amount: Fraction) -> Fraction:
        """`amount` per interval, per month."""
        return amount / (_MONTHS_PER_INTERVAL[self.interval] * self.interval_count)


@dataclass(frozen=True, slots=True)
class Subscription:
    """What the figures need of one subscription: its state now and its terms over its life
    (in order of `since`; one at least, or it counts nowhere)."""

    id: str
    customer: str
    status: str
    created: datetime
    trial_start: datetime | None
    trial_end: datetime | None
    ended_at: datetime | None
    current_period_start: datetime | None
    # Whether one of its invoices was paid with money (amount_paid > 0).
    paid_invoice: bool
    terms: tuple[Term, ...] = ()
    discounts: tuple[Discount, ...] = ()

    def counts(self) -> bool:
        """Whether any of its terms is worth something (else it is in no figure)."""
        return any(term.period_amount > 0 for term in self.terms)

    def term_on(self, day: date) -> Term:
        """The term in effect at the end of `day` (UTC): the last one since then; before the
        first, the first."""
        in_effect = self.terms[0]
        for term in self.terms[1:]:
            if term.since.date() > day:
                break
            in_effect = term
        return in_effect

    def mrr_on(self, day: date) -> Fraction:
        """Its monthly-normalised amount at the end of `day`, at that day's term, the discounts
        then in force taken off in order (a percentage of what is left; an amount in its own
        currency only)."""
        term = self.term_on(day)
        amount = term.monthly(Fraction(term.period_amount))
        for discount in self.discounts:
            if not discount.applies_on(day):
                continue
            if discount.percent_off is not None:
                amount *= 1 - Fraction(discount.percent_off) / 100
            elif discount.amount_off is not None and discount.currency == term.currency:
                amount = max(Fraction(0), amount - term.monthly(Fraction(discount.amount_off)))
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


# A series: (currency, plan), plan None for all the plans of the currency.
_Key = tuple[str, str | None]


def _keys(term: Term | None) -> tuple[_Key, ...]:
    """The series a subscription counts in on `term`: its plan's and its currency's; none once
    it has ended (None) or on a term worth nothing."""
    if term is None or term.period_amount <= 0:
        return ()
    return (term.currency, term.plan), (term.currency, None)


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
    series: dict[_Key, _Series] = {}

    def of(key: _Key) -> _Series:
        return series.setdefault(key, _Series(span.days))

    by_customer: dict[str, list[tuple[Subscription, _Window | None]]] = defaultdict(list)
    for sub in subscriptions:
        if sub.counts():
            by_customer[sub.customer].append((sub, sub.paying()))
    for held in by_customer.values():
        for sub, window in held:
            if (trial := sub.trial()) is not None:
                _count_trial(sub, trial, of, span)
            if window is not None:
                kind = "reactivated" if _returned(sub, window[0], held) else "new"
                _count_paying(sub, window, kind, of, span)
    for charge in charges:
        if 0 <= (i := span.index(charge.created.date())) < span.days:
            for key in ((charge.currency, charge.plan), (charge.currency, None)):
                of(key).count("gross_revenue", i, charge.amount)
                of(key).count("refunds", i, charge.amount_refunded)
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


def _walk(
    sub: Subscription, window: _Window, also: set[date], span: _Range
) -> Iterator[tuple[int, date | None]]:
    """Where what `sub` counts for may change in `window`, as (index in the range, the day whose
    term holds then): its start, each day within on which its term changes or that is one of
    `also`, and its end (day None: it counts nowhere from then). Each day before the range comes
    at index -1 with the range's first day, so that the range starts with what held on it; the
    walk stops at the range's end."""
    start, end = window[0].date(), window[1] and window[1].date()
    days = {term.since.date() for term in sub.terms[1:]} | also
    for day in [start, *sorted(d for d in days if start < d and (end is None or d < end))]:
        if (i := span.index(day)) >= span.days:
            return
        yield i, max(day, span.since)
    if end is not None:
        yield span.index(end), None


def _count_trial(
    sub: Subscription, trial: _Window, of: Callable[[_Key], _Series], span: _Range
) -> None:
    """A trial counts as trialing in the plan of each day's term; it started in the plan of its
    first day, and ended (converted or not) in the plan it was trialing in last."""
    held: tuple[_Key, ...] = ()
    for n, (i, on) in enumerate(_walk(sub, trial, set(), span)):
        now = () if on is None else _keys(sub.term_on(on))
        for key in set(held) ^ set(now):
            of(key).trialing_change[max(i, 0)] += 1 if key in now else -1
        if 0 <= i < span.days:
            for key in now if n == 0 else ():
                of(key).count("trials_started", i)
            for key in held if on is None else ():
                of(key).count("trials_ended", i)
                if sub.paid_invoice:
                    of(key).count("trials_converted", i)
        held = now


def _count_paying(
    sub: Subscription,
    window: _Window,
    kind: str,
    of: Callable[[_Key], _Series],
    span: _Range,
) -> None:
    """A paying subscription is `kind` (new or reactivated) where it starts and churned where it
    ends. A change of term that moves it to another plan (or off a price worth nothing, or onto
    one) churns it from the series it leaves and makes it new in those it joins, so that each
    series keeps active = previous active + new + reactivated - churned; over all plans, a plan
    change only changes the MRR."""
    # Its MRR also changes on the days a discount starts or ends.
    also = {d.start.date() for d in sub.discounts}
    also |= {d.end.date() for d in sub.discounts if d.end is not None}
    held: dict[_Key, Fraction] = {}
    for n, (i, on) in enumerate(_walk(sub, window, also, span)):
        now = {} if on is None else dict.fromkeys(_keys(sub.term_on(on)), sub.mrr_on(on))
        at = max(i, 0)
        for key in held.keys() | now.keys():
            target = of(key)
            target.mrr_change[at] += now.get(key, Fraction(0)) - held.get(key, Fraction(0))
            if (key in held) == (key in now):
                continue
            target.active_change[at] += 1 if key in now else -1
            if 0 <= i < span.days:
                target.count((kind if n == 0 else "new") if key in now else "churned", i)
        held = now


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
