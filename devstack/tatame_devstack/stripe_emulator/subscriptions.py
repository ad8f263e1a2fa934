"""Subscriptions as Stripe's current billing runs them (see `PriceSubscription`)."""

import calendar
import time
from datetime import UTC, datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from localstripe.errors import UserError
from localstripe.resources import (
    Customer,
    Invoice,
    InvoiceItem,
    PaymentIntent,
    PaymentMethod,
    Plan,
    SetupIntent,
    Subscription,
    store,
)

from tatame_devstack.stripe_emulator.catalog import Price, items_with_plans, recurring_plan
from tatame_devstack.stripe_emulator.customers import attach, customer_payment_method
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    as_bool,
    as_int,
    as_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.state import stored

if TYPE_CHECKING:
    from tatame_devstack.stripe_emulator.schedules import SubscriptionSchedule

PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete")
PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")
ENDED_STATUSES = ("canceled", "incomplete_expired")
DAY_SECONDS = 24 * 60 * 60
TIMES = "\N{MULTIPLICATION SIGN}"  # as in the line descriptions Stripe writes


def subscription_named(param: str, value: Any) -> "PriceSubscription":
    """The subscription named by parameter `param`, one made with `POST /v1/subscriptions`."""
    subscription = Subscription._api_retrieve(as_str(param, value))
    if not isinstance(subscription, PriceSubscription):
        raise param_error(param, "The emulator manages subscriptions of POST /v1/subscriptions.")
    return subscription


def price_subscriptions() -> list["PriceSubscription"]:
    return [s for s in stored(Subscription.object) if isinstance(s, PriceSubscription)]


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
        plan = recurring_plan("items[0][price]", params.pop("price"))
    quantity = as_int("items[0][quantity]", params.pop("quantity", item.quantity), minimum=1)
    reject_unknown(params, parent="items[0]")
    if plan.currency != item.plan.currency:
        raise param_error("items[0][price]", "The price must be in the subscription's currency.")
    return plan, quantity


def proration_lines(
    subscription: "PriceSubscription", plan: Plan, quantity: int, at: int
) -> list[dict[str, Any]]:
    """Stripe's prorations for changing the item to `quantity` of `plan` at `at`: a credit for
    the unused rest of the period at the old terms and, when the interval stays (otherwise a new
    period starts at `at`), a charge for that rest at the new terms."""
    item = subscription.items._list[0]
    start, end = subscription.current_period_start, subscription.current_period_end
    rest = Fraction(max(0, end - at), end - start)
    day = datetime.fromtimestamp(at, UTC).strftime("%d %b %Y")
    lines = [
        {
            "amount": -round(item.plan.amount * item.quantity * rest),
            "plan": item.plan,
            "quantity": item.quantity,
            "description": f"Unused time on {item.quantity} {TIMES} {item.plan.name} after {day}",
        }
    ]
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


class PriceSubscription(Subscription):
    """localstripe's Subscription with what Stripe's current billing does besides: `items[].price`
    (exported as `items.data[].price`), `payment_behavior=default_incomplete` (the first
    invoice's PaymentIntent, or during a trial a `pending_setup_intent`, waits for the client),
    `payment_settings.save_default_payment_method`, a `default_payment_method` that collects its
    invoices, item changes with prorations (`proration_behavior`), cancellation at the period
    end, schedules, and periods that honour `interval_count` and trials."""

    # Defaults of what this class adds (subscriptions of an older state file lack them).
    default_payment_method: str | None = None
    pending_setup_intent: str | None = None
    schedule: str | None = None
    _default_incomplete = False
    _saves_payment_method = False
    _started = True
    _period_start: int | None = None

    def __init__(
        self,
        payment_behavior: Any = "allow_incomplete",
        payment_settings: Any = None,
        default_payment_method: Any = None,
        **params: Any,
    ) -> None:
        behavior = as_str("payment_behavior", payment_behavior, choices=PAYMENT_BEHAVIORS)
        if payment_settings is not None and not isinstance(payment_settings, dict):
            raise param_error("payment_settings", "Invalid payment_settings: expected a hash")
        settings = dict(payment_settings or {})
        saves = as_str(
            "payment_settings[save_default_payment_method]",
            settings.pop("save_default_payment_method", "off"),
            choices=("on_subscription", "off"),
        )
        reject_unknown(settings, parent="payment_settings")
        payment_method = None
        if default_payment_method is not None:
            payment_method = customer_payment_method(
                "default_payment_method", default_payment_method, params.get("customer")
            )
        # Set before Subscription.__init__, which invoices (and collects) the first period.
        self._default_incomplete = behavior == "default_incomplete"
        self._saves_payment_method = saves == "on_subscription"
        self._started = False
        self.default_payment_method = None if payment_method is None else payment_method.id
        super().__init__(payment_behavior="allow_incomplete", **params)
        self._started = True

    @classmethod
    def _api_create(cls, items: Any = None, **params: Any) -> Subscription:
        subscription = super()._api_create(items=items_with_plans(items), **params)
        if subscription.trial_period_days is not None or subscription.trial_end is not None:
            # localstripe leaves trials `incomplete`; Stripe starts them `trialing` at once. The
            # created event already went out, so the change follows as an update, as Stripe's
            # own later changes do.
            now = int(time.time())
            days = subscription.trial_period_days
            subscription.trial_start = now
            subscription.trial_end = subscription.trial_end or now + int(days) * DAY_SECONDS
            subscription.status = "trialing"
            if subscription._default_incomplete:
                # Nothing is due now: the client saves a card for the trial's end with this.
                subscription.pending_setup_intent = SetupIntent(customer=subscription.customer).id
                subscription._default_incomplete = False
            send_event("customer.subscription.updated", subscription)
        return subscription

    @classmethod
    def _api_update(
        cls,
        id: str,
        items: Any = None,
        proration_behavior: Any = None,
        default_payment_method: Any = None,
        cancel_at_period_end: Any = None,
        cancel_at: Any = None,
        **params: Any,
    ) -> Subscription:
        subscription = cls._api_retrieve(id)
        if subscription.status in ENDED_STATUSES:
            raise UserError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        behavior = as_str(
            "proration_behavior",
            proration_behavior or "create_prorations",
            choices=PRORATION_BEHAVIORS,
        )
        terms = new_terms(subscription, items)
        if terms is not None and subscription.status == "incomplete":
            raise UserError(400, "The items of an incomplete subscription cannot change.")
        payment_method = None
        if default_payment_method not in (None, ""):
            payment_method = customer_payment_method(
                "default_payment_method", default_payment_method, subscription.customer
            )
        if (cancel_at_period_end, cancel_at) != (None, None) and subscription.schedule:
            raise UserError(
                400,
                "The subscription is managed by the subscription schedule "
                f"`{subscription.schedule}`, and updating any cancelation behavior directly is "
                "not allowed. Please update the schedule instead.",
            )
        at_period_end = (
            None
            if cancel_at_period_end is None
            else as_bool("cancel_at_period_end", cancel_at_period_end)
        )
        cancel_time = None if cancel_at in (None, "") else as_int("cancel_at", cancel_at, minimum=1)
        if params:  # localstripe's own (metadata, trial_end, …) refuse what they do not know
            super()._api_update(id, **params)

        if default_payment_method is not None:
            subscription.default_payment_method = (
                None if payment_method is None else payment_method.id
            )
        if at_period_end is not None:
            end = subscription.current_period_end if at_period_end else None
            subscription._cancel_at(end, at_period_end=at_period_end)
        elif cancel_at is not None:
            subscription._cancel_at(cancel_time, at_period_end=False)
        if terms is not None:
            subscription._change_terms(*terms, behavior=behavior)
        send_event("customer.subscription.updated", subscription)
        return subscription

    @property
    def current_period_start(self) -> int:
        if self.status == "trialing" and self.trial_start is not None:
            return self.trial_start
        return self._period_start or self.start_date

    @property
    def current_period_end(self) -> int:
        if self.status == "trialing" and self.trial_end is not None:
            return self.trial_end
        return add_interval(self.current_period_start, self.plan.interval, self.plan.interval_count)

    def _cancel_at(self, when: int | None, *, at_period_end: bool) -> None:
        self.cancel_at_period_end, self.cancel_at = at_period_end, when
        self.canceled_at = None if when is None else int(time.time())

    def _change_terms(self, plan: Plan, quantity: int, *, behavior: str) -> None:
        """Change the item in place (same id), prorating as `behavior` says; an interval change
        starts a new period now, invoiced at once."""
        item = self.items._list[0]
        if (plan.id, quantity) == (item.plan.id, item.quantity):
            return
        now, end = int(time.time()), self.current_period_end
        charged = self.status != "trialing"  # nothing is prorated during a trial
        if charged and behavior != "none":
            for line in proration_lines(self, plan, quantity, now):
                InvoiceItem(
                    amount=line["amount"],
                    currency=plan.currency,
                    customer=self.customer,
                    subscription=self.id,
                    plan=line["plan"].id,
                    proration=True,
                    description=line["description"],
                    period_start=now,
                    period_end=end,
                )
        new_period = charged and interval_changes(item.plan, plan)
        item.plan, item.quantity, self.quantity = plan, quantity, quantity
        if new_period:
            self._period_start = now
            self._create_invoice()
        elif charged and behavior == "always_invoice":
            self._collect(Invoice(customer=self.customer, subscription=self.id, items=[]))

    def _payment_method(self) -> Any:
        """What pays this subscription's invoices: its own default, else its customer's."""
        if self.default_payment_method is not None:
            return PaymentMethod._api_retrieve(self.default_payment_method)
        return Customer._api_retrieve(self.customer)._get_default_payment_method_or_source()

    def _create_invoice(self) -> None:
        """Invoice the current period (and pending invoice items), then collect it."""
        self._collect(
            Invoice(
                customer=self.customer,
                subscription=self.id,
                items=list(self.items._list),
                date=self.current_period_start,
            )
        )

    def _collect(self, invoice: Invoice) -> None:
        """Finalize `invoice` and charge it to the payment method; with `default_incomplete`,
        the first invoice's PaymentIntent waits for the client to confirm it instead."""
        invoice._finalize()
        send_event("invoice.finalized", invoice)
        if invoice.status == "paid":  # nothing due
            invoice._on_payment_success()
            return
        intent = PaymentIntent(
            amount=invoice.total, currency=invoice.currency, customer=self.customer
        )
        intent.invoice, invoice.payment_intent = invoice.id, intent.id
        if self._default_incomplete:
            self._default_incomplete = False
            return
        payment_method = self._payment_method()
        if payment_method is not None:
            intent.payment_method = payment_method.id
            intent._confirm(on_failure_now=lambda: None)
        if invoice.status != "paid":
            send_event("invoice.payment_failed", invoice)
            if self.status in ("active", "trialing"):
                self.status = "past_due"

    def _on_initial_payment_success(self, invoice: Invoice) -> None:
        """localstripe's hook, called for every paid invoice of the subscription."""
        changed = self.status in ("incomplete", "past_due", "unpaid")
        if changed:
            self.status = "active"
        intent = invoice.payment_intent and PaymentIntent._api_retrieve(invoice.payment_intent)
        if self._saves_payment_method and intent and intent.payment_method:
            payment_method = PaymentMethod._api_retrieve(intent.payment_method)
            if payment_method.customer is None:
                attach(payment_method, self.customer)
            changed = changed or self.default_payment_method != payment_method.id
            self.default_payment_method = payment_method.id
        if changed and self._started:
            send_event("customer.subscription.updated", self)

    def _on_setup_intent_succeeded(self, intent: SetupIntent) -> None:
        """The trial's pending SetupIntent saved a card: it pays from the trial's end."""
        self.pending_setup_intent = None
        if self._saves_payment_method or self.default_payment_method is None:
            self.default_payment_method = intent.payment_method
        send_event("customer.subscription.updated", self)

    def _end_period(self) -> "PriceSubscription":
        """The current period (or trial) ends now, as a test clock would make it: a planned
        cancellation happens; otherwise the schedule's next phase starts, and the new period is
        invoiced and charged (past_due when the charge fails)."""
        if self.status in (*ENDED_STATUSES, "incomplete"):
            raise UserError(400, f"The subscription is {self.status}: it has no period to end.")
        end = self.current_period_end
        if self.cancel_at is not None and self.cancel_at <= end:
            self.status, self.ended_at = "canceled", self.cancel_at
            send_event("customer.subscription.deleted", self)
            return self
        self._period_start = end
        if self.status == "trialing":
            self.status = "active"
        if self.schedule is not None:
            _schedule(self.schedule)._period_ended(self, end)
        self._create_invoice()
        send_event("customer.subscription.updated", self)
        return self

    def _export(self, expand: Any = None) -> dict[str, Any]:
        exported = super()._export(expand=expand)
        for item in exported["items"]["data"]:
            price = store.get(Price.object + ":" + item["plan"]["id"])
            item["price"] = None if price is None else price._export()
            # Since API version 2025-03-31 the period lives on the items.
            item["current_period_start"] = exported["current_period_start"]
            item["current_period_end"] = exported["current_period_end"]
        saves = "on_subscription" if self._saves_payment_method else "off"
        exported["payment_settings"] = {"save_default_payment_method": saves}
        return exported


def cancel_subscription(id: str, **params: Any) -> Subscription:
    """`DELETE /v1/subscriptions/{id}`: canceled now, its schedule with it."""
    ignored = ("invoice_now", "prorate", "cancellation_details")
    reject_unknown({k: v for k, v in params.items() if k not in ignored})
    subscription = subscription_named("id", id)
    if subscription.status in ENDED_STATUSES:
        raise UserError(400, f"The subscription is already {subscription.status}.")
    if subscription.schedule is not None:
        _schedule(subscription.schedule)._cancel()
    subscription.canceled_at = int(time.time())
    return Subscription._api_delete(id)


def _schedule(id: str) -> "SubscriptionSchedule":
    """The schedule that manages a subscription (schedules build on this module)."""
    from tatame_devstack.stripe_emulator.schedules import SubscriptionSchedule

    return SubscriptionSchedule._api_retrieve(id)
