"""Periods and prorations: the arithmetic of a subscription's changes, in flexible billing mode
(the default at the pinned API version): a credit is for what was debited, not the price now."""

import calendar
from datetime import UTC, datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from localstripe.resources import Plan

from tatame_devstack.stripe_emulator.catalog import recurring_plan
from tatame_devstack.stripe_emulator.params import as_int, as_str, param_error, reject_unknown

if TYPE_CHECKING:
    from tatame_devstack.stripe_emulator.subscriptions import PriceSubscription

DAY_SECONDS = 24 * 60 * 60
TIMES = "\N{MULTIPLICATION SIGN}"  # as in the line descriptions Stripe writes


def add_interval(start: int, interval: str, count: int) -> int:
    """`count` intervals after the Unix time `start`: months and years by the calendar (in UTC),
    on the same day of the month or the month's last day."""
    if interval in ("day", "week"):
        return start + count * DAY_SECONDS * (7 if interval == "week" else 1)
    moment = datetime.fromtimestamp(start, UTC)
    months = moment.month - 1 + count * (12 if interval == "year" else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def interval_changes(old: Plan, new: Plan) -> bool:
    return (old.interval, old.interval_count) != (new.interval, new.interval_count)


def new_terms(subscription: "PriceSubscription", items: Any) -> tuple[Plan, int] | None:
    """The plan and quantity that `items` (one entry: the subscription's item, by id, with a new
    price and/or quantity) change the subscription's item to."""
    if items is None:
        return None
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        raise param_error("items", "The emulator changes exactly one item: items[0][id].")
    params, item = dict(items[0]), subscription.items._list[0]
    if as_str("items[0][id]", params.pop("id", None)) != item.id:
        raise param_error("items[0][id]", f"The subscription has no item {items[0].get('id')}.")
    plan = item.plan
    if "price" in params:
        # In the subscription's currency, where the new price has it.
        plan = recurring_plan("items[0][price]", params.pop("price"), item.plan.currency)
    quantity = as_int("items[0][quantity]", params.pop("quantity", item.quantity), minimum=1)
    reject_unknown(params, parent="items[0]")
    if plan.currency != item.plan.currency:
        raise param_error("items[0][price]", "The price must be in the subscription's currency.")
    return plan, quantity


def proration_lines(
    subscription: "PriceSubscription", plan: Plan, quantity: int, at: int
) -> list[dict[str, Any]]:
    """Stripe's prorations for changing the item to `quantity` of `plan` at `at`, in flexible
    billing mode: a credit for the unused rest of the period of what was debited for it (none
    when nothing was, as in a trial) and, when the interval stays (otherwise a new period starts
    at `at`), a charge for that rest at the new terms."""
    item = subscription.items._list[0]
    start, end = subscription.current_period_start, subscription.current_period_end
    rest = Fraction(max(0, end - at), end - start)
    day = datetime.fromtimestamp(at, UTC).strftime("%d %b %Y")
    debited = subscription.debited_per_period()
    lines = []
    if debited:
        lines.append(
            {
                "amount": -round(debited * rest),
                "plan": item.plan,
                "quantity": item.quantity,
                "description": f"Unused time on {item.quantity} {TIMES} {item.plan.name} after {day}",
            }
        )
    if not interval_changes(item.plan, plan):
        lines.append(
            {
                "amount": round(plan.amount * quantity * rest),
                "plan": plan,
                "quantity": quantity,
                "description": f"Remaining time on {quantity} {TIMES} {plan.name} after {day}",
            }
        )
    return lines
