"""Subscription schedules made `from_subscription`, rendered as at the pinned API version."""

import time
from typing import Any

import stripe
from localstripe.errors import UserError
from localstripe.resources import Plan, StripeObject, Subscription

from tatame_devstack.stripe_emulator.catalog import Price, plan_in, recurring_plan
from tatame_devstack.stripe_emulator.discounts import (
    Discount,
    PromotionCode,
    PromotionCoupon,
    Redemption,
    live_discounts,
    redeem,
)
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    INTERVALS,
    as_int,
    as_metadata,
    as_str,
    merged_metadata,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.prorations import add_interval
from tatame_devstack.stripe_emulator.render import expanded, shape
from tatame_devstack.stripe_emulator.subscriptions import (
    ENDED_STATUSES,
    PRORATION_BEHAVIORS,
    PriceSubscription,
    subscription_named,
)

SCHEDULE = stripe.SubscriptionSchedule


def _phase(
    price_id: str,
    quantity: int,
    start: int,
    end: int,
    proration_behavior: str = "create_prorations",
    metadata: dict[str, str] | None = None,
    trial_end: int | None = None,
    discounts: list[dict[str, str | None]] | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    return {
        "currency": currency,
        "discounts": discounts or [],
        "start_date": start,
        "end_date": end,
        "items": [{"price": price_id, "plan": price_id, "quantity": quantity, "metadata": {}}],
        "proration_behavior": proration_behavior,
        "metadata": metadata or {},
        "trial_end": trial_end,
    }


def _currency_of(phase: dict[str, Any]) -> str:
    """The phase's currency; a phase of an older state file has none: its price's."""
    return phase.get("currency") or Plan._api_retrieve(phase["items"][0]["price"]).currency


def _render_phase(phase: dict[str, Any]) -> dict[str, Any]:
    items = [
        shape(
            SCHEDULE.Phase.Item,
            {
                "discounts": [],
                "metadata": item["metadata"],
                "plan": item["plan"],
                "price": item["price"],
                "quantity": item["quantity"],
                "tax_rates": [],
            },
        )
        for item in phase["items"]
    ]
    values = {
        "add_invoice_items": [],
        "currency": _currency_of(phase),
        # Phases of an older state file have none.
        "discounts": [shape(SCHEDULE.Phase.Discount, d) for d in phase.get("discounts", [])],
        "end_date": phase["end_date"],
        "items": items,
        "metadata": phase["metadata"],
        "proration_behavior": phase["proration_behavior"],
        "start_date": phase["start_date"],
        "trial_end": phase["trial_end"],
    }
    return shape(SCHEDULE.Phase, values)


def _phase_end(param: str, params: dict[str, Any], start: int, price: Price) -> int:
    """A phase's end: `end_date`, or `duration` after `start`, or one interval of its price."""
    end_date, duration = params.pop("end_date", None), params.pop("duration", None)
    if end_date is not None and duration is not None:
        raise param_error(param, "Set at most one of end_date and duration.")
    if end_date is not None:
        return as_int(f"{param}[end_date]", end_date, minimum=start + 1)
    if duration is None:
        return add_interval(start, price.recurring["interval"], price.recurring["interval_count"])
    if not isinstance(duration, dict):
        raise param_error(f"{param}[duration]", "Invalid duration: expected a hash")
    duration = dict(duration)
    interval = as_str(
        f"{param}[duration][interval]", duration.pop("interval", None), choices=INTERVALS
    )
    count = as_int(
        f"{param}[duration][interval_count]", duration.pop("interval_count", 1), minimum=1
    )
    reject_unknown(duration, parent=f"{param}[duration]")
    return add_interval(start, interval, count)


def _phase_discount(kind: str, value: str) -> dict[str, str | None]:
    return {"coupon": None, "discount": None, "promotion_code": None, kind: value}


def _phase_discounts(param: str, value: Any) -> list[dict[str, str | None]]:
    """A phase's `discounts`: each an existing discount, a coupon or a promotion code."""
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise param_error(param, "Invalid discounts: expected a list")
    parsed = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise param_error(f"{param}[{index}]", "Pass one of coupon, discount, promotion_code.")
        ((kind, given),) = entry.items()
        lookup = {
            "coupon": PromotionCoupon._api_retrieve,
            "discount": Discount._api_retrieve,
            "promotion_code": PromotionCode._api_retrieve,
        }.get(kind)
        if lookup is None:
            raise param_error(f"{param}[{index}][{kind}]", "Received unknown parameter.")
        parsed.append(_phase_discount(kind, lookup(as_str(f"{param}[{index}][{kind}]", given)).id))
    return parsed


def phase_discount_ids(phase: dict[str, Any], subscription: PriceSubscription) -> list[str]:
    """The discounts of the subscription once `phase` starts: the existing ones it names, and
    new ones from the coupons and promotion codes it names."""
    ids = []
    for entry in phase.get("discounts", []):
        if entry["discount"] is not None:
            ids.append(entry["discount"])
            continue
        code = entry["promotion_code"] and PromotionCode._api_retrieve(entry["promotion_code"])
        coupon = PromotionCoupon._api_retrieve(code.coupon if code else entry["coupon"])
        ids += redeem(
            [Redemption(coupon, code or None, None)],
            customer=subscription.customer,
            subscription=subscription.id,
        )
    return ids


class SubscriptionSchedule(StripeObject):
    """A subscription schedule made `from_subscription`: phases of one item each, entered as the
    subscription's periods end (`PriceSubscription._end_period`), released after the last one.
    The current phase stays as it is (`end_behavior=release` only)."""

    object = "subscription_schedule"
    _id_prefix = "sub_sched_"

    def __init__(self, from_subscription: Any = None, metadata: Any = None, **unknown: Any) -> None:
        reject_unknown(unknown)
        if from_subscription is None:
            raise param_error(
                "from_subscription", "The emulator creates schedules from_subscription only."
            )
        subscription = subscription_named("from_subscription", from_subscription)
        if subscription.schedule is not None:
            raise param_error(
                "from_subscription",
                f"The subscription is already attached to the schedule {subscription.schedule}.",
            )
        if subscription.status in ENDED_STATUSES or subscription.cancel_at is not None:
            raise param_error(
                "from_subscription",
                "You cannot migrate a subscription that is canceled or set to cancel.",
            )
        metadata = as_metadata(metadata)

        super().__init__()
        item = subscription.items._list[0]
        self.customer = subscription.customer
        self.subscription = subscription.id
        self.status = "active"
        self.end_behavior = "release"
        self.metadata = metadata
        trial_end = subscription.trial_end if subscription.status == "trialing" else None
        kept = live_discounts(subscription._discount_ids, int(time.time()))
        self.phases = [
            _phase(
                item.plan.id,
                item.quantity,
                subscription.current_period_start,
                subscription.current_period_end,
                trial_end=trial_end,
                discounts=[_phase_discount("discount", d) for d in kept],
                currency=item.plan.currency,
            )
        ]
        self.canceled_at: int | None = None
        self.completed_at: int | None = None
        self.released_at: int | None = None
        self.released_subscription = None
        self.test_clock = None
        self._current = 0
        subscription.schedule = self.id
        send_event("subscription_schedule.created", self)

    def _export(self, expand: Any = None) -> dict[str, Any]:
        expand = expand or []
        current = None
        if self.status == "active":
            phase = self.phases[self._current]
            current = shape(
                SCHEDULE.CurrentPhase,
                {"start_date": phase["start_date"], "end_date": phase["end_date"]},
            )
        issuer = shape(SCHEDULE.DefaultSettings.InvoiceSettings.Issuer, {"type": "self"})
        default_settings = {
            "billing_cycle_anchor": "automatic",
            "invoice_settings": shape(SCHEDULE.DefaultSettings.InvoiceSettings, {"issuer": issuer}),
        }
        billing_mode = {
            "type": "flexible",
            "flexible": shape(SCHEDULE.BillingMode.Flexible, {"proration_discounts": "included"}),
            "updated_at": self.created,
        }
        values = {
            "id": self.id,
            "object": "subscription_schedule",
            "billing_mode": shape(SCHEDULE.BillingMode, billing_mode),
            "canceled_at": self.canceled_at,
            "completed_at": self.completed_at,
            "created": self.created,
            "current_phase": current,
            "customer": self.customer,
            "default_settings": shape(SCHEDULE.DefaultSettings, default_settings),
            "end_behavior": self.end_behavior,
            "livemode": False,
            "metadata": self.metadata,
            "pause_schedules": [],
            "phases": [_render_phase(phase) for phase in self.phases],
            "released_at": self.released_at,
            "released_subscription": self.released_subscription,
            "status": self.status,
            "subscription": self.subscription,
            "test_clock": self.test_clock,
        }
        return expanded(shape(stripe.SubscriptionSchedule, values, expand=expand), expand)

    @classmethod
    def _api_update(
        cls,
        id: str,
        phases: Any = None,
        end_behavior: Any = None,
        proration_behavior: Any = None,
        metadata: Any = None,
        **unknown: Any,
    ) -> "SubscriptionSchedule":
        reject_unknown(unknown)
        schedule = cls._api_retrieve(id)
        if schedule.status not in ("not_started", "active"):
            raise UserError(
                400, f"You cannot update a subscription schedule that is {schedule.status}."
            )
        if end_behavior is not None:
            as_str("end_behavior", end_behavior, choices=("release",))
        if proration_behavior is not None:
            as_str("proration_behavior", proration_behavior, choices=PRORATION_BEHAVIORS)
        parsed = schedule.phases if phases is None else schedule._parsed_phases(phases)
        merged = (
            schedule.metadata if metadata is None else merged_metadata(schedule.metadata, metadata)
        )

        schedule.phases, schedule.metadata, schedule._current = parsed, merged, 0
        send_event("subscription_schedule.updated", schedule)
        return schedule

    def _parsed_phases(self, phases: Any) -> list[dict[str, Any]]:
        """New phases from the current one on; the current one must be given unchanged."""
        if not isinstance(phases, list) or not phases:
            raise param_error("phases", "Invalid phases: expected a non-empty list")
        current = self.phases[self._current]
        parsed: list[dict[str, Any]] = []
        start = current["start_date"]
        for index, value in enumerate(phases):
            param = f"phases[{index}]"
            if not isinstance(value, dict):
                raise param_error(param, "Invalid phase: expected a hash")
            params = dict(value)
            items = params.pop("items", None)
            if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
                raise param_error(f"{param}[items]", "The emulator supports one item per phase.")
            item = dict(items[0])
            price = item.pop("price", None)
            plan = recurring_plan(f"{param}[items][0][price]", price, _currency_of(current))
            quantity = as_int(f"{param}[items][0][quantity]", item.pop("quantity", 1), minimum=1)
            reject_unknown(item, parent=f"{param}[items][0]")
            if "start_date" in params or index == 0:
                given = as_int(f"{param}[start_date]", params.pop("start_date", None), minimum=1)
                if given != start:
                    raise param_error(
                        f"{param}[start_date]", "Each phase starts as the previous ends."
                    )
            end = _phase_end(param, params, start, Price._api_retrieve(plan.id))
            trial_end = params.pop("trial_end", None)
            if trial_end is not None:
                trial_end = as_int(f"{param}[trial_end]", trial_end, minimum=start + 1)
                if trial_end > end:
                    raise param_error(f"{param}[trial_end]", "The trial must end within the phase.")
            proration = as_str(
                f"{param}[proration_behavior]",
                params.pop("proration_behavior", "create_prorations"),
                choices=PRORATION_BEHAVIORS,
            )
            phase_metadata = as_metadata(params.pop("metadata", None))
            discounts = _phase_discounts(f"{param}[discounts]", params.pop("discounts", None))
            reject_unknown(params, parent=param)
            parsed.append(
                _phase(
                    *(plan.id, quantity, start, end, proration, phase_metadata, trial_end),
                    discounts,
                    plan.currency,
                )
            )
            start = end
        first = parsed[0]
        if (first["end_date"], first["items"][0]["price"], first["items"][0]["quantity"]) != (
            current["end_date"],
            current["items"][0]["price"],
            current["items"][0]["quantity"],
        ):
            raise param_error("phases[0]", "The emulator keeps the current phase as it is.")
        return parsed

    @classmethod
    def _api_release(cls, id: str, **params: Any) -> "SubscriptionSchedule":
        reject_unknown({k: v for k, v in params.items() if k != "preserve_cancel_date"})
        schedule = cls._api_retrieve(id)
        if schedule.status not in ("not_started", "active"):
            raise UserError(
                400, f"You cannot release a subscription schedule that is {schedule.status}."
            )
        schedule._release()
        return schedule

    def _release(self) -> None:
        Subscription._api_retrieve(self.subscription).schedule = None
        self.status, self.released_at = "released", int(time.time())
        self.released_subscription, self.subscription = self.subscription, None
        send_event("subscription_schedule.released", self)

    def _cancel(self) -> None:
        Subscription._api_retrieve(self.subscription).schedule = None
        self.status, self.canceled_at = "canceled", int(time.time())
        send_event("subscription_schedule.canceled", self)

    def _period_ended(self, subscription: PriceSubscription, at: int) -> None:
        """The subscription's period ended at `at`: the phase starting then begins (its item
        replaces the subscription's), or after the last phase the schedule releases it."""
        following = next((i for i, p in enumerate(self.phases) if p["start_date"] == at), None)
        if following is not None:
            self._current = following
            phase_item = self.phases[following]["items"][0]
            item = subscription.items._list[0]
            phase_plan = Plan._api_retrieve(phase_item["price"])
            item.plan = plan_in(phase_plan, _currency_of(self.phases[following]))
            item.quantity = phase_item["quantity"]
            # The phase's discounts replace the subscription's (none given: none kept).
            subscription._discount_ids = tuple(
                phase_discount_ids(self.phases[following], subscription)
            )
            send_event("subscription_schedule.updated", self)
        elif self.phases[-1]["end_date"] <= at:
            self._release()


def cancel_subscription(id: str, **params: Any) -> Subscription:
    """`DELETE /v1/subscriptions/{id}`: canceled now, its schedule with it."""
    ignored = ("invoice_now", "prorate", "cancellation_details")
    reject_unknown({k: v for k, v in params.items() if k not in ignored})
    subscription = subscription_named("id", id)
    if subscription.status in ENDED_STATUSES:
        raise UserError(400, f"The subscription is already {subscription.status}.")
    if subscription.schedule is not None:
        SubscriptionSchedule._api_retrieve(subscription.schedule)._cancel()
    subscription.canceled_at = int(time.time())
    return Subscription._api_delete(id)
