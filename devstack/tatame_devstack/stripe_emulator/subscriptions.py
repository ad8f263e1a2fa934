"""Subscriptions as Stripe bills them at the pinned API version (see `PriceSubscription`)."""

import time
from typing import TYPE_CHECKING, Any

from localstripe.errors import UserError
from localstripe.resources import (
    Customer,
    Invoice,
    InvoiceItem,
    List,
    PaymentIntent,
    PaymentMethod,
    Plan,
    SetupIntent,
    StripeObject,
    Subscription,
    SubscriptionItem,
)

from tatame_devstack.stripe_emulator.catalog import Product
from tatame_devstack.stripe_emulator.currencies import check_customer_currency
from tatame_devstack.stripe_emulator.customers import (
    attach,
    customer_payment_method,
    customer_time,
)
from tatame_devstack.stripe_emulator.discounts import applied_to, checked_discounts, redeem
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    as_bool,
    as_int,
    as_metadata,
    as_str,
    merged_metadata,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.pauses import hold_invoice, pause_collection_of
from tatame_devstack.stripe_emulator.pending_updates import (
    PENDING_IF_INCOMPLETE,
    Pending,
    apply_if_paid,
    change_once_paid,
    check_params,
    expire_if_due,
)
from tatame_devstack.stripe_emulator.prorations import (
    add_interval,
    interval_changes,
    new_terms,
    proration_lines,
)
from tatame_devstack.stripe_emulator.state import stored
from tatame_devstack.stripe_emulator.subscription_params import (
    check_billing_mode,
    first_item,
    missing_payment_method_of,
    payment_method_types_of,
    restarts_cycle,
    saves_payment_method,
    trial_end_of,
)
from tatame_devstack.stripe_emulator.subscription_render import render_subscription
from tatame_devstack.stripe_emulator.tax import automatic_tax_enabled, require_location

if TYPE_CHECKING:
    from tatame_devstack.stripe_emulator.schedules import SubscriptionSchedule

PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete")
UPDATE_PAYMENT_BEHAVIORS = ("allow_incomplete", PENDING_IF_INCOMPLETE)
PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")
ENDED_STATUSES = ("canceled", "incomplete_expired")


def subscription_named(param: str, value: Any) -> "PriceSubscription":
    """The subscription named by parameter `param`, one made with `POST /v1/subscriptions`."""
    subscription = Subscription._api_retrieve(as_str(param, value))
    if not isinstance(subscription, PriceSubscription):
        raise param_error(param, "The emulator manages subscriptions of POST /v1/subscriptions.")
    return subscription


def price_subscriptions() -> list["PriceSubscription"]:
    return [s for s in stored(Subscription.object) if isinstance(s, PriceSubscription)]


class PriceSubscription(Subscription):
    """A subscription as Stripe's billing runs it at the pinned API version (flexible billing
    mode): one item of a recurring price, in its currency or one of its `currency_options`
    (`currency`); `payment_behavior=default_incomplete` (the first
    invoice's PaymentIntent, or during a trial a `pending_setup_intent`, waits for the client);
    `payment_settings.save_default_payment_method`; a `default_payment_method` that collects its
    invoices; a trial that starts `trialing` with its $0 paid invoice and ends, without a
    payment method, as `trial_settings` says (invoiced, or canceled); item changes with
    prorations (`proration_behavior`); cancellation at the period end; schedules; and periods
    that honour `interval_count` and trials. It uses localstripe's Subscription for storage,
    listing and its invoices' payment hooks, not for creating (localstripe's is a 2017 one)."""

    # Defaults of what this class adds (subscriptions of an older state file lack them).
    default_payment_method: str | None = None
    pending_setup_intent: str | None = None
    schedule: str | None = None
    _default_incomplete = False
    _saves_payment_method = False
    _started = True
    _period_start: int | None = None
    _debited: int | None = None
    _discount_ids: tuple[str, ...] = ()
    _missing_payment_method = "create_invoice"
    _payment_method_types: list[str] | None = None
    _pending: Pending | None = None  # see pending_updates
    pause_collection: dict[str, Any] | None = None  # see pauses
    _holds_unpaid_changes = False
    _automatic_tax = False  # Stripe Tax on its invoices (`automatic_tax[enabled]`)

    def __init__(
        self,
        customer: Any = None,
        items: Any = None,
        payment_behavior: Any = "allow_incomplete",
        payment_settings: Any = None,
        default_payment_method: Any = None,
        metadata: Any = None,
        trial_period_days: Any = None,
        trial_end: Any = None,
        billing_mode: Any = None,
        discounts: Any = None,
        trial_settings: Any = None,
        currency: Any = None,
        automatic_tax: Any = None,
        **unknown: Any,
    ) -> None:
        reject_unknown(unknown)
        missing_payment_method = missing_payment_method_of(trial_settings)
        customer_id = Customer._api_retrieve(as_str("customer", customer)).id
        taxed = automatic_tax_enabled("automatic_tax", automatic_tax)
        if taxed:
            require_location(customer_id)
        plan, quantity, item_metadata = first_item(items, currency)
        check_customer_currency(customer_id, plan.currency)
        redemptions = checked_discounts(
            discounts,
            customer=customer_id,
            product=plan.product,
            currency=plan.currency,
            subtotal=plan.amount * quantity,
        )
        behavior = as_str("payment_behavior", payment_behavior, choices=PAYMENT_BEHAVIORS)
        saves = saves_payment_method(payment_settings)
        payment_method = None
        if default_payment_method is not None:
            payment_method = customer_payment_method(
                "default_payment_method", default_payment_method, customer_id
            )
        now = int(time.time())
        trial_ends = trial_end_of(trial_period_days, trial_end, now)
        check_billing_mode(billing_mode)
        metadata = as_metadata(metadata)

        # Everything is validated. localstripe's Subscription.__init__ is skipped on purpose.
        StripeObject.__init__(self)
        self.customer, self.metadata = customer_id, metadata
        self.start_date = now
        self.billing_cycle_anchor = trial_ends or now
        self.status = "trialing" if trial_ends else "incomplete"
        self.trial_start: int | None = now if trial_ends else None
        self.trial_end: int | None = trial_ends or None
        self.cancel_at_period_end = False
        self.cancel_at: int | None = None
        self.canceled_at: int | None = None
        self.ended_at: int | None = None
        self.latest_invoice: str | None = None
        self.default_payment_method = None if payment_method is None else payment_method.id
        self._enable_incomplete_payments = True  # localstripe's payment hooks read it
        self._default_incomplete = behavior == "default_incomplete"
        self._saves_payment_method = saves
        self._payment_method_types = payment_method_types_of(payment_settings)
        self._missing_payment_method = missing_payment_method
        self._automatic_tax = taxed
        self.items = List("/v1/subscription_items?subscription=" + self.id)
        item = SubscriptionItem(
            subscription=self.id, plan=plan.id, quantity=quantity, metadata=item_metadata
        )
        item.plan = plan  # localstripe's item takes the stored Plan; this one is in `currency`
        self.items._list.append(item)
        self._started = False
        self._discount_ids = tuple(redeem(redemptions, customer=customer_id, subscription=self.id))
        if trial_ends and self._default_incomplete:
            # Nothing is due now: the client saves a card for the trial's end with this.
            self.pending_setup_intent = SetupIntent(customer=customer_id).id
            self._default_incomplete = False
        if trial_ends:
            self._invoice_trial()
        else:
            self._create_invoice("subscription_create")
        self._started = True
        send_event("customer.subscription.created", self)

    @classmethod
    def _api_update(
        cls,
        id: str,
        items: Any = None,
        proration_behavior: Any = None,
        default_payment_method: Any = None,
        cancel_at_period_end: Any = None,
        cancel_at: Any = None,
        metadata: Any = None,
        payment_behavior: Any = None,
        pause_collection: Any = None,
        billing_cycle_anchor: Any = None,
        **unknown: Any,
    ) -> Subscription:
        reject_unknown(unknown)
        subscription = cls._api_retrieve(id)
        pending = (
            as_str(
                "payment_behavior",
                payment_behavior or "allow_incomplete",
                choices=UPDATE_PAYMENT_BEHAVIORS,
            )
            == PENDING_IF_INCOMPLETE
        )
        if pending:
            check_params(
                {
                    "cancel_at": cancel_at,
                    "cancel_at_period_end": cancel_at_period_end,
                    "default_payment_method": default_payment_method,
                    "metadata": metadata,
                    "pause_collection": pause_collection,
                    "billing_cycle_anchor": billing_cycle_anchor,
                }
            )
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
        pause = None if pause_collection is None else pause_collection_of(pause_collection)
        restarts = restarts_cycle(billing_cycle_anchor, behavior, subscription.status)
        if pause_collection is not None:
            subscription.pause_collection = pause
        if metadata is not None:
            subscription.metadata = merged_metadata(subscription.metadata, metadata)
        if default_payment_method is not None:
            subscription.default_payment_method = (
                None if payment_method is None else payment_method.id
            )
        if at_period_end is not None:
            end = subscription.current_period_end if at_period_end else None
            subscription._cancel_at(end, at_period_end=at_period_end)
        elif cancel_at is not None:
            subscription._cancel_at(cancel_time, at_period_end=False)
        if terms is not None and pending:
            change_once_paid(subscription, *terms, behavior=behavior)
        elif terms is not None:
            subscription._change_terms(*terms, behavior=behavior)
        if restarts:
            subscription._restart_cycle()
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
        plan = self.items._list[0].plan
        return add_interval(self.current_period_start, plan.interval, plan.interval_count)

    def debited_per_period(self) -> int:
        """What the item's current period was debited at, for a whole period: the credit of a
        change in flexible billing mode is for this, not for the price now."""
        if self._debited is None:  # a subscription of an older state file
            item = self.items._list[0]
            return item.plan.amount * item.quantity
        return self._debited

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
                invoice_item = InvoiceItem(
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
                invoice_item.subscription_item = item.id
            self._debited = plan.amount * quantity
        new_period = charged and interval_changes(item.plan, plan)
        item.plan, item.quantity = plan, quantity
        if new_period:
            self._period_start = now
            self._create_invoice("subscription_update")
        elif charged and behavior == "always_invoice":
            invoice = Invoice(customer=self.customer, subscription=self.id, items=[])
            invoice.billing_reason = "subscription_update"
            applied_to(invoice, list(self._discount_ids))
            self._collect(invoice)

    def _restart_cycle(self) -> None:
        """`billing_cycle_anchor=now`: a new period starts now (the customer's test clock's time,
        if on one), invoiced (and charged) at once."""
        now = customer_time(self.customer)
        self.billing_cycle_anchor = self._period_start = now
        self._create_invoice("subscription_update")

    def _payment_method(self) -> Any:
        """What pays this subscription's invoices: its own default, else its customer's."""
        if self.default_payment_method is not None:
            return PaymentMethod._api_retrieve(self.default_payment_method)
        return Customer._api_retrieve(self.customer)._get_default_payment_method_or_source()

    def _create_invoice(self, billing_reason: str) -> None:
        """Invoice the current period (and pending invoice items), then collect it."""
        invoice = Invoice(
            customer=self.customer,
            subscription=self.id,
            items=list(self.items._list),
            date=self.current_period_start,
        )
        invoice.billing_reason = billing_reason
        item = self.items._list[0]
        self._debited = item.plan.amount * item.quantity
        applied_to(invoice, list(self._discount_ids))
        self._collect(invoice)

    def _invoice_trial(self) -> None:
        """The $0 invoice, paid at once, with which Stripe starts a trial: its line is the item
        over the trial, at no charge. It is announced (`invoice.created`) only once its lines
        are: Stripe never shows it with the price's amount."""
        invoice = Invoice(  # `simulation`: localstripe would announce it with the full amount
            customer=self.customer,
            subscription=self.id,
            items=list(self.items._list),
            date=self.trial_start,
            simulation=True,
        )
        for pending in stored(InvoiceItem.object):  # what localstripe's real invoice claims
            if pending.customer == self.customer and pending.invoice is None:
                pending.invoice = invoice.id
        self.latest_invoice = invoice.id
        invoice.billing_reason = "subscription_create"
        product = Product._api_retrieve(self.items._list[0].plan.product)
        for line in invoice.lines._list:
            if line.type == "subscription":
                line.amount = 0
                line.description = f"Trial period for {product.name}"
                line.period = {"start": self.trial_start, "end": self.trial_end}
        send_event("invoice.created", invoice)
        self._debited = 0
        applied_to(invoice, list(self._discount_ids))
        self._collect(invoice)

    def _collect(self, invoice: Invoice) -> None:
        """Finalize `invoice` and charge it to the payment method; with `default_incomplete`,
        the first invoice's PaymentIntent waits for the client to confirm it instead. While
        collection is paused, the pause's behavior holds it instead (`pauses.hold_invoice`)."""
        if self.pause_collection is not None:
            hold_invoice(invoice, self.pause_collection["behavior"])
            return
        invoice._finalize()
        send_event("invoice.finalized", invoice)
        if invoice.status == "paid":  # nothing due
            invoice._on_payment_success()
            return
        intent = PaymentIntent(
            amount=invoice.total, currency=invoice.currency, customer=self.customer
        )
        intent.invoice, invoice.payment_intent = invoice.id, intent.id
        intent._allowed_types = self._payment_method_types
        if self._default_incomplete:
            self._default_incomplete = False
            return
        payment_method = self._payment_method()
        if payment_method is not None:
            intent.payment_method = payment_method.id
            intent._confirm(on_failure_now=lambda: None)
        if invoice.status != "paid":
            if (intent.next_action or {}).get("type") != "boleto_display_details":
                send_event("invoice.payment_failed", invoice)  # a voucher is no failure
            if intent.status == "requires_action":  # the card holder, or a voucher to pay
                send_event("invoice.payment_action_required", invoice)
            if self.status in ("active", "trialing") and not self._holds_unpaid_changes:
                self.status = "past_due"

    def _on_initial_payment_success(self, invoice: Invoice) -> None:
        """localstripe's hook, called for every paid invoice of the subscription."""
        changed = apply_if_paid(self, invoice)
        if self.status in ("incomplete", "past_due", "unpaid"):
            changed = True
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
        cancellation happens, as does a trial's end without a payment method that is to cancel;
        otherwise the schedule's next phase starts, and the new period is invoiced and charged
        (past_due when the charge fails)."""
        if self.status in (*ENDED_STATUSES, "incomplete"):
            raise UserError(400, f"The subscription is {self.status}: it has no period to end.")
        end = self.current_period_end
        expire_if_due(self, end)
        if self.cancel_at is not None and self.cancel_at <= end:
            return self._ended(self.cancel_at)
        cancels = self.status == "trialing" and self._missing_payment_method == "cancel"
        if cancels and self._payment_method() is None:
            self.canceled_at = end
            return self._ended(end)
        self._period_start = end
        if self.status == "trialing":
            self.status = "active"
        if self.schedule is not None:
            _schedule(self.schedule)._period_ended(self, end)
        self._create_invoice("subscription_cycle")
        send_event("customer.subscription.updated", self)
        return self

    def _ended(self, when: int) -> "PriceSubscription":
        self.status, self.ended_at = "canceled", when
        send_event("customer.subscription.deleted", self)
        return self

    def _export(self, expand: Any = None) -> dict[str, Any]:
        return render_subscription(self, expand or [])


def _schedule(id: str) -> "SubscriptionSchedule":
    """The schedule that manages a subscription (schedules build on this module)."""
    from tatame_devstack.stripe_emulator.schedules import SubscriptionSchedule

    return SubscriptionSchedule._api_retrieve(id)
