"""Changing a subscription's plan or quantity (previewed in change_previews.py; cancelling and
resuming are in cancellations.py).

An upgrade — more per year, the price's amount times quantity normalised by its interval — takes
effect now, billed as the caller chooses (`proration_behavior`); when it bills now, only once
paid (see pending_payments.py). A downgrade waits for the end of the period in a subscription
schedule (phase one: the current plan until the period ends, keeping a trial; phase two: the
new plan, then the schedule releases the subscription; both phases keep the subscription's
discounts), so the customer keeps what they have until then.

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
)

from services.auth.principal import Principal
from services.billing.discounts import discount_ids
from services.billing.errors import Conflict, InvalidArgument
from services.billing.idempotency import RequestKey, made_by, request_metadata, stripe_options
from services.billing.invoices import INVOICES
from services.billing.mirror import answered_at, integer, mapping, reference, string, unix_time
from services.billing.ownership import Owned, owned
from services.billing.pending_payments import (
    PendingPayment,
    pending_payment,
    write_pending_invoice,
)
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscribe import checked_quantity, recurring_price
from services.billing.subscriptions import SubscriptionRecord, write_through
from services.common.errors import ErrorReason

TakesEffect = Literal["now", "period_end", "after_payment"]
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


async def owned_subscription(
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
class Change:
    owned: Owned[stripe.Subscription]
    item_id: str
    current: Terms
    new: Terms
    takes_effect: TakesEffect


async def requested_change(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription_id: str,
    price: str,
    quantity: int,
) -> Change:
    """The change a request asks for, checked against Stripe's subscription and the catalog."""
    if not price and not quantity:
        raise InvalidArgument("give a new price, a new quantity, or both")
    owned = await owned_subscription(
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
    return Change(owned, item_id, current, new, takes_effect(current=current, new=new))


@dataclass(frozen=True, slots=True)
class Updated:
    subscription: SubscriptionRecord
    takes_effect: TakesEffect
    # When the change applies; None while it waits for its payment.
    effective_time: datetime | None
    # The payment an upgrade waits for (takes_effect "after_payment"), if it did not go through.
    payment: PendingPayment | None = None


async def release_schedule(
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


def _checked_pending(change: Change) -> bool:
    """Whether the subscription's pending update (a change waiting for its payment) is the one
    asked for again; Conflict for another change while one waits."""
    pending = change.owned.data.get("pending_update")
    if not pending:
        return False
    items = [mapping(item) for item in pending.get("subscription_items") or []]
    if items and (reference(items[0]["price"]), items[0].get("quantity")) == (
        change.new.price_id,
        change.new.quantity,
    ):
        return True
    raise Conflict(
        "a plan change waits for its payment: pay or authenticate it, or let it expire, first",
        reason=ErrorReason.SUBSCRIPTION_UPDATE_PENDING,
    )


async def _mark(
    stripe_client: stripe.StripeClient,
    principal: Principal,
    subscription: dict[str, Any],
    idempotency: RequestKey | None,
) -> None:
    """Mark the subscription with the principal and the request about to change it (a change
    made with pending_if_incomplete cannot carry metadata): a retry after a failure that had
    already applied the change then finds its own mark (`made_by`)."""
    wanted = {"tatame_principal": principal.key, **request_metadata(idempotency)}
    metadata = subscription.get("metadata") or {}
    if all(metadata.get(key) == value for key, value in wanted.items()):
        return
    async with translated_stripe_errors("mark the subscription"):
        await stripe_client.v1.subscriptions.update_async(
            subscription["id"],
            params={"metadata": wanted},
            options=stripe_options(idempotency, "subscription-mark"),
        )


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

    An upgrade that bills now applies only once paid (`pending_if_incomplete`): when its payment
    is declined or needs the card holder's authentication, the subscription keeps its plan and
    the answer (takes_effect "after_payment") carries the payment; asking for the same change
    again answers it again, another change waits (SUBSCRIPTION_UPDATE_PENDING). Asking for the
    current terms drops a pending downgrade. An upgrade marks the subscription with its request
    (`idempotency`), so that a run after a failed one that had already applied it answers with
    the subscription instead of finding nothing to change.
    """
    if proration_behavior not in PRORATION_BEHAVIORS:
        raise InvalidArgument("proration_behavior is required")
    change = await requested_change(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        subscription_id=subscription_id,
        price=price,
        quantity=quantity,
    )
    subscription = change.owned.data
    asked_again = _checked_pending(change)
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
    released = () if asked_again else await release_schedule(stripe_client, subscription)
    answer = change.owned.answer
    if change.new != change.current and not asked_again:
        await _mark(stripe_client, principal, subscription, idempotency)
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
                    "payment_behavior": "pending_if_incomplete",
                },
                options=stripe_options(idempotency, "subscription-update"),
            )
    updated = answer.to_dict()
    pending = None
    if updated.get("pending_update"):
        pending = await pending_payment(stripe_client, updated)
    async with engine.begin() as conn:
        record = await write_through(
            conn,
            stripe_client=stripe_client,
            principal=principal,
            answer=answer,
            schedules=released,
            then=[] if pending is None else [(INVOICES, pending[1].id)],
        )
        if pending is not None:
            payment, invoice = pending
            await write_pending_invoice(
                conn, stripe_client=stripe_client, payment=payment, invoice=invoice
            )
            return Updated(record, "after_payment", None, payment)
    return Updated(record, "now", answered_at(answer))


async def _schedule_downgrade(
    stripe_client: stripe.StripeClient,
    principal: Principal,
    change: Change,
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
