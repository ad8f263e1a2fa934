"""Changing a subscription: plan or quantity (previewed first), cancelling, resuming.

An upgrade — more per year, the price's amount times quantity normalised by its interval — takes
effect now, billed as the caller chooses (`proration_behavior`). A downgrade waits for the end
of the period in a subscription schedule (phase one: the current plan until the period ends,
keeping a trial; phase two: the new plan, then the schedule releases the subscription; both
phases keep the subscription's discounts), so the customer keeps what they have until then.

Each change acts on Stripe's current state (never the mirror's, which may lag) of a subscription
of the principal's customer, and writes Stripe's answer through the mirror.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from fractions import Fraction
from typing import Any, Literal

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from stripe.params import (
    SubscriptionScheduleUpdateParamsPhase,
    SubscriptionScheduleUpdateParamsPhaseDiscount,
    SubscriptionUpdateParams,
)

from services.auth.principal import Principal
from services.billing.discounts import discount_ids
from services.billing.errors import Conflict, InvalidArgument
from services.billing.idempotency import RequestKey, made_by, request_metadata, stripe_options
from services.billing.mirror import answered_at, integer, mapping, reference, string, unix_time
from services.billing.ownership import Owned, owned
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscribe import checked_quantity, recurring_price
from services.billing.subscriptions import SubscriptionRecord, write_through
from services.common.errors import ErrorReason
from services.common.subscription_statuses import LIVE_STATUSES

TakesEffect = Literal["now", "period_end"]
PRORATION_BEHAVIORS = frozenset({"create_prorations", "always_invoice", "none"})
# Statuses in which the plan of a subscription may change.
_CHANGEABLE = frozenset({"trialing", "active", "past_due"})
# Billing periods per year, by interval.
_PER_YEAR = {
    "day": Fraction(365),
    "week": Fraction(365, 7),
    "month": Fraction(12),
    "year": Fraction(1),
}


@dataclass(frozen=True, slots=True)
class Terms:
    """What a subscription bills: a recurring price and a quantity."""

    price_id: str
    unit_amount: int
    currency: str
    interval: str
    interval_count: int
    quantity: int

    def per_year(self) -> Fraction:
        """The amount billed per year at these terms (minor units)."""
        return self.unit_amount * self.quantity * _PER_YEAR[self.interval] / self.interval_count


def takes_effect(*, current: Terms, new: Terms) -> TakesEffect:
    """When a change applies: at the period end if it lowers the amount per year, else now."""
    return "period_end" if new.per_year() < current.per_year() else "now"


def _current_terms(subscription: dict[str, Any]) -> tuple[str, Terms]:
    """The subscription's first item id and its terms."""
    item = mapping(subscription["items"]["data"][0])
    price = mapping(item["price"])
    recurring = mapping(price["recurring"])
    if (
        price.get("billing_scheme") == "tiered"
        or recurring.get("usage_type") == "metered"
        or price.get("unit_amount") is None
    ):
        raise Conflict(
            "the subscription's price is not a fixed amount (tiered or metered): "
            "change its plan in the billing portal",
            reason=ErrorReason.SUBSCRIPTION_NOT_CHANGEABLE,
        )
    return string(item["id"]), Terms(
        price_id=string(price["id"]),
        unit_amount=integer(price["unit_amount"]),
        currency=string(price["currency"]),
        interval=string(recurring["interval"]),
        interval_count=integer(recurring.get("interval_count") or 1),
        quantity=integer(item["quantity"]),
    )


async def _owned(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
) -> Owned[stripe.Subscription]:
    """Stripe's subscription, when it belongs to the principal's customer; NotFound otherwise."""
    return await owned(
        stripe_client.v1.subscriptions.retrieve_async,
        subscription_id,
        engine=engine,
        principal=principal,
        kind="subscription",
    )


@dataclass(frozen=True, slots=True)
class _Change:
    owned: Owned[stripe.Subscription]
    item_id: str
    current: Terms
    new: Terms
    takes_effect: TakesEffect


async def _change(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
    price: str,
    quantity: int,
) -> _Change:
    """The change a request asks for, checked against Stripe's subscription and the catalog."""
    if not price and not quantity:
        raise InvalidArgument("give a new price, a new quantity, or both")
    owned = await _owned(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
    )
    status = owned.data["status"]
    if status not in _CHANGEABLE:
        raise Conflict(
            f"the subscription is {status}", reason=ErrorReason.SUBSCRIPTION_NOT_CHANGEABLE
        )
    item_id, current = _current_terms(owned.data)
    new = replace(current, quantity=checked_quantity(quantity, default=current.quantity))
    if price:
        record = await recurring_price(engine=engine, price=price)
        if record.currency != current.currency:
            raise InvalidArgument(
                f"price {price!r} is in {record.currency}, not {current.currency}"
            )
        new = replace(
            new,
            price_id=record.id,
            unit_amount=record.unit_amount,
            interval=string(record.interval),
            interval_count=integer(record.interval_count),
        )
    return _Change(owned, item_id, current, new, takes_effect(current=current, new=new))


@dataclass(frozen=True, slots=True)
class PreviewLine:
    description: str
    amount: int
    proration: bool


@dataclass(frozen=True, slots=True)
class Preview:
    amount_due: int
    currency: str
    lines: list[PreviewLine]
    takes_effect: TakesEffect


def _is_proration(line: dict[str, Any]) -> bool:
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    return bool(details.get("proration"))


async def preview_change(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
    price: str,
    quantity: int,
    proration_behavior: str | None,
) -> Preview:
    """What a change would bill, from Stripe's invoice preview.

    For an upgrade, the invoice its proration lands on; for a downgrade, the first invoice at the
    new terms.
    """
    change = await _change(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
        price=price,
        quantity=quantity,
    )
    if change.takes_effect == "period_end":
        proration_behavior = "none"  # nothing is prorated at the period boundary
    async with translated_stripe_errors("preview the change"):
        invoice = await stripe_client.v1.invoices.create_preview_async(
            params={
                "customer": change.owned.customer.stripe_customer_id,
                "subscription": change.owned.data["id"],
                "subscription_details": {
                    "items": [
                        {
                            "id": change.item_id,
                            "price": change.new.price_id,
                            "quantity": change.new.quantity,
                        }
                    ],
                    "proration_behavior": proration_behavior or "create_prorations",
                },
            }
        )
    preview = invoice.to_dict()
    return Preview(
        amount_due=integer(preview["amount_due"]),
        currency=string(preview["currency"]),
        lines=[
            PreviewLine(
                description=line.get("description") or "",
                amount=integer(line["amount"]),
                proration=_is_proration(line),
            )
            for line in preview["lines"]["data"]
        ],
        takes_effect=change.takes_effect,
    )


@dataclass(frozen=True, slots=True)
class Updated:
    subscription: SubscriptionRecord
    takes_effect: TakesEffect
    effective_time: datetime


async def _release_schedule(
    stripe_client: stripe.StripeClient, subscription: dict[str, Any]
) -> tuple[stripe.SubscriptionSchedule, ...]:
    """Release the subscription's schedule, if any (dropping a pending downgrade); the
    released schedule, to be written through."""
    if not subscription.get("schedule"):
        return ()
    async with translated_stripe_errors("release the subscription schedule"):
        released = await stripe_client.v1.subscription_schedules.release_async(
            reference(subscription["schedule"])
        )
    return (released,)


async def update_subscription(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
    price: str,
    quantity: int,
    proration_behavior: str | None,
    idempotency: RequestKey | None = None,
) -> Updated:
    """Change the plan and/or quantity: upgrades now, downgrades at the period end.

    Asking for the current terms drops a pending downgrade. An upgrade marks the subscription
    with its request (`idempotency`), so that a run after a failed one that had already applied
    it answers with the subscription instead of finding nothing to change.
    """
    if proration_behavior not in PRORATION_BEHAVIORS:
        raise InvalidArgument("proration_behavior is required")
    change = await _change(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
        price=price,
        quantity=quantity,
    )
    subscription = change.owned.data
    if (
        change.new == change.current
        and not subscription.get("schedule")
        and not made_by(idempotency, subscription)
    ):
        raise InvalidArgument("the change keeps the current price and quantity")
    if change.takes_effect == "period_end":
        if subscription["cancel_at_period_end"]:
            raise Conflict(
                "resume the subscription before a downgrade",
                reason=ErrorReason.SUBSCRIPTION_CANCELING,
            )
        schedule, change_time = await _schedule_downgrade(
            stripe_client, principal, change, idempotency
        )
        async with engine.begin() as conn:
            record = await write_through(
                conn,
                stripe_client=stripe_client,
                principal=principal,
                answer=change.owned.answer,
                schedules=(schedule,),
            )
        return Updated(record, "period_end", change_time)
    released = await _release_schedule(stripe_client, subscription)
    answer = change.owned.answer
    if change.new != change.current:
        async with translated_stripe_errors("update the subscription"):
            answer = await stripe_client.v1.subscriptions.update_async(
                subscription["id"],
                params={
                    "items": [
                        {
                            "id": change.item_id,
                            "price": change.new.price_id,
                            "quantity": change.new.quantity,
                        }
                    ],
                    "proration_behavior": proration_behavior,
                    "metadata": {
                        "tatame_principal": principal.key,
                        **request_metadata(idempotency),
                    },
                },
                options=stripe_options(idempotency, "subscription-update"),
            )
    async with engine.begin() as conn:
        record = await write_through(
            conn,
            stripe_client=stripe_client,
            principal=principal,
            answer=answer,
            schedules=released,
        )
    return Updated(record, "now", answered_at(answer))


async def _schedule_downgrade(
    stripe_client: stripe.StripeClient,
    principal: Principal,
    change: _Change,
    idempotency: RequestKey | None,
) -> tuple[stripe.SubscriptionSchedule, datetime]:
    """Put the new terms in the phase after the current period, in the subscription's schedule
    (created from the subscription when it has none); the schedule and when the change comes."""
    subscription = change.owned.data
    async with translated_stripe_errors("schedule the downgrade"):
        if subscription.get("schedule"):
            schedule = await stripe_client.v1.subscription_schedules.retrieve_async(
                reference(subscription["schedule"])
            )
        else:
            schedule = await stripe_client.v1.subscription_schedules.create_async(
                params={"from_subscription": subscription["id"]},
                options=stripe_options(idempotency, "schedule"),
            )
        phase = mapping(schedule.to_dict()["current_phase"])
        current, new = change.current, change.new
        # Both phases keep the subscription's discounts: a phase without them would drop them.
        kept: list[SubscriptionScheduleUpdateParamsPhaseDiscount] = [
            {"discount": discount} for discount in discount_ids(subscription)
        ]
        # The current phase keeps the subscription's trial, if any (it ends with the phase).
        current_phase: SubscriptionScheduleUpdateParamsPhase = {
            "items": [{"price": current.price_id, "quantity": current.quantity}],
            "start_date": phase["start_date"],
            "end_date": phase["end_date"],
            "discounts": kept,
        }
        if subscription["status"] == "trialing":
            current_phase["trial_end"] = subscription["trial_end"]
        updated = await stripe_client.v1.subscription_schedules.update_async(
            schedule.id,
            params={
                "end_behavior": "release",
                "proration_behavior": "none",
                "metadata": {"tatame_principal": principal.key},
                "phases": [
                    current_phase,
                    {
                        "items": [{"price": new.price_id, "quantity": new.quantity}],
                        "duration": {
                            "interval": new.interval,
                            "interval_count": new.interval_count,
                        },
                        "proration_behavior": "none",
                        "discounts": kept,
                    },
                ],
            },
            options=stripe_options(idempotency, "schedule-phases"),
        )
    return updated, unix_time(phase["end_date"])


async def cancel_subscription(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
    immediately: bool,
) -> SubscriptionRecord:
    """Cancel at the end of the period (access until then), or now.

    An `incomplete` subscription (never paid, no period to keep) is canceled now in any case. A
    pending downgrade is dropped.
    """
    owned = await _owned(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
    )
    subscription = owned.data
    if subscription["status"] not in LIVE_STATUSES:
        raise Conflict(
            f"the subscription is {subscription['status']}", reason=ErrorReason.SUBSCRIPTION_ENDED
        )
    released = await _release_schedule(stripe_client, subscription)
    async with translated_stripe_errors("cancel the subscription"):
        if immediately or subscription["status"] == "incomplete":
            answer = await stripe_client.v1.subscriptions.cancel_async(subscription["id"])
        else:
            answer = await stripe_client.v1.subscriptions.update_async(
                subscription["id"], params={"cancel_at_period_end": True}
            )
    async with engine.begin() as conn:
        return await write_through(
            conn,
            stripe_client=stripe_client,
            principal=principal,
            answer=answer,
            schedules=released,
        )


async def resume_subscription(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
) -> SubscriptionRecord:
    """Undo a planned cancellation (`cancel_at_period_end` or `cancel_at`), if there is one."""
    owned = await _owned(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
    )
    subscription, answer = owned.data, owned.answer
    if subscription["status"] not in LIVE_STATUSES:
        raise Conflict(
            f"the subscription is {subscription['status']}", reason=ErrorReason.SUBSCRIPTION_ENDED
        )
    params: SubscriptionUpdateParams | None = None
    if subscription["cancel_at_period_end"]:
        params = {"cancel_at_period_end": False}
    elif subscription.get("cancel_at") is not None:
        params = {"cancel_at": ""}
    if params is not None:
        async with translated_stripe_errors("resume the subscription"):
            answer = await stripe_client.v1.subscriptions.update_async(
                subscription["id"], params=params
            )
    async with engine.begin() as conn:
        return await write_through(
            conn, stripe_client=stripe_client, principal=principal, answer=answer
        )
