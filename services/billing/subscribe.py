"""Starting a subscription: one live subscription per principal, a free trial on the first one
ever, and the PaymentSheet flow (CreateSubscription), with a promotion code if the customer has
one (checked in services/billing/promotions.py; previewed by `preview_promotion_code`).
Checkout starts its sessions here too.

Every start holds the principal's advisory lock (the one customer creation takes) while it
checks the mirror and Stripe and creates what it creates, so two starts never race. A start
refuses when a subscription is live in either (Stripe's list catches what the mirror has not
heard of yet). An `incomplete` one — created by PaymentSheet, first payment never made — does
not block: the same plan is handed back to be paid, another plan replaces it.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from stripe.params import SubscriptionCreateParams

from services.auth.principal import Principal
from services.billing.catalog import PriceRecord, find_price
from services.billing.customers import CustomerRecord, customer_for_purchase, lock_principal
from services.billing.discounts import EXPAND_DISCOUNTS, DiscountRecord, coupon_terms
from services.billing.errors import Conflict, InvalidArgument, LiveSubscriptionExists
from services.billing.idempotency import RequestKey, made_by, request_metadata, stripe_options
from services.billing.mirror import integer, reference, string
from services.billing.payment_methods import checked_stripe_version, ephemeral_key
from services.billing.promotions import PromotionCode, checked_promotion_code
from services.billing.settings import BillingRules
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscription_rules import blocking_subscription, trial_days
from services.billing.subscriptions import (
    SubscriptionRecord,
    mirrored_statuses,
    stripe_subscriptions,
    write_through,
)
from services.common.errors import ErrorReason

MAX_QUANTITY = 100
# What CreateSubscription needs expanded to hand PaymentSheet a client secret.
_INTENTS = ["latest_invoice.confirmation_secret", "pending_setup_intent"]


def checked_quantity(quantity: int, *, default: int) -> int:
    """A quantity from a request: 0 (unset) is `default`; otherwise 1 to MAX_QUANTITY."""
    if quantity == 0:
        return default
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidArgument(f"quantity must be between 1 and {MAX_QUANTITY}")
    return quantity


async def recurring_price(*, engine: AsyncEngine, price: str) -> PriceRecord:
    """The catalog's active recurring price with this id or lookup key, of a fixed amount;
    `price_not_subscribable` for a tiered or metered one."""
    record = await find_price(engine=engine, price=price)
    if record.type != "recurring":
        raise InvalidArgument(f"price {price!r} is not a recurring price")
    return checked_fixed_amount(record)


def checked_fixed_amount(record: PriceRecord) -> PriceRecord:
    """`record`, when it bills a fixed amount; else `price_not_subscribable` (tiered, metered,
    customer-chosen: what the app cannot take)."""
    if not record.fixed_amount:
        kind = "metered" if record.usage_type == "metered" else record.billing_scheme
        if record.custom_unit_amount is not None:
            kind = "customer-chosen"
        raise Conflict(
            f"price {record.id!r} is not a fixed amount ({kind}): the app cannot take it",
            reason=ErrorReason.PRICE_NOT_SUBSCRIBABLE,
        )
    return record


@dataclass(frozen=True, slots=True)
class Start:
    """A start under way, holding the principal's lock in `conn`'s transaction."""

    conn: AsyncConnection
    customer: CustomerRecord
    # The trial to give, in days: None unless this is the principal's first subscription ever.
    trial_days: int | None
    # The principal's `incomplete` subscriptions in Stripe (first payment never made).
    incomplete: list[dict[str, Any]]
    # The subscription an earlier run of this very request created, if one did.
    own: dict[str, Any] | None


@asynccontextmanager
async def starting(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    principal: Principal,
    customer: CustomerRecord,
    idempotency: RequestKey | None = None,
) -> AsyncIterator[Start]:
    """Hold the principal's lock while a subscription starts; refused when one is live.

    LiveSubscriptionExists (`live_subscription_exists`) when one is live (in the mirror or in Stripe). Open
    Checkout Sessions of the customer are expired, so none completes into a second subscription.
    What an earlier run of the same request (`idempotency`) created neither blocks nor expires:
    that run failed after Stripe answered, and this one answers with it.
    """
    async with engine.begin() as conn:
        await lock_principal(conn, principal)
        in_stripe = await stripe_subscriptions(stripe_client, customer.stripe_customer_id)
        own = next((s for s in in_stripe if made_by(idempotency, s)), None)
        statuses = await mirrored_statuses(conn, customer.stripe_customer_id)
        statuses.update({subscription["id"]: subscription["status"] for subscription in in_stripe})
        blocking = blocking_subscription(statuses, own_id=None if own is None else own["id"])
        if blocking is not None:
            raise LiveSubscriptionExists(f"this account already has {blocking}")
        await _expire_open_checkout_sessions(
            stripe_client, customer.stripe_customer_id, idempotency
        )
        yield Start(
            conn=conn,
            customer=customer,
            trial_days=trial_days(configured_days=rules.trial_days, ever_subscribed=bool(statuses)),
            incomplete=[s for s in in_stripe if s["status"] == "incomplete" and s is not own],
            own=own,
        )


async def _expire_open_checkout_sessions(
    stripe_client: stripe.StripeClient, stripe_customer_id: str, idempotency: RequestKey | None
) -> None:
    async with translated_stripe_errors("expire the open checkout sessions"):
        listed = await stripe_client.v1.checkout.sessions.list_async(
            params={"customer": stripe_customer_id, "status": "open", "limit": 100}
        )
        async for session in listed.auto_paging_iter():
            if not made_by(idempotency, session.to_dict()):
                await stripe_client.v1.checkout.sessions.expire_async(session.id)


async def cancel_incomplete(
    start: Start, *, stripe_client: stripe.StripeClient, principal: Principal
) -> None:
    """Cancel the principal's incomplete subscriptions (a new one replaces them)."""
    for subscription in start.incomplete:
        async with translated_stripe_errors("cancel an incomplete subscription"):
            canceled = await stripe_client.v1.subscriptions.cancel_async(subscription["id"])
        await write_through(
            start.conn, stripe_client=stripe_client, principal=principal, answer=canceled
        )


@dataclass(frozen=True, slots=True)
class NewSubscription:
    subscription: SubscriptionRecord
    # "payment_intent" (the first payment), "setup_intent" (a trial: nothing due now), or ""
    # when there is nothing for the client to confirm.
    intent_type: str
    client_secret: str
    stripe_customer_id: str
    ephemeral_key_secret: str
    trial_applied: bool


def _intent(subscription: dict[str, Any]) -> tuple[str, str]:
    """What PaymentSheet confirms: the pending SetupIntent of a trial, or the first invoice's
    PaymentIntent (both expanded)."""
    setup_intent = subscription.get("pending_setup_intent")
    if isinstance(setup_intent, dict):
        return "setup_intent", setup_intent["client_secret"]
    invoice = subscription.get("latest_invoice")
    secret = (invoice or {}).get("confirmation_secret") if isinstance(invoice, dict) else None
    if secret:
        return "payment_intent", secret["client_secret"]
    return "", ""


def _same_plan(subscription: dict[str, Any], price: PriceRecord, quantity: int) -> bool:
    items = subscription["items"]["data"]
    return len(items) == 1 and (reference(items[0]["price"]), items[0]["quantity"]) == (
        price.id,
        quantity,
    )


async def create_subscription(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    principal: Principal,
    price: str,
    quantity: int,
    email: str,
    name: str,
    mobile_stripe_version: str,
    promotion_code: str = "",
    idempotency: RequestKey | None = None,
) -> NewSubscription:
    """A PaymentSheet subscription (default_incomplete) and the client secret that confirms it;
    with `promotion_code` (as the customer typed it), checked first, then applied by Stripe."""
    if mobile_stripe_version:
        checked_stripe_version(mobile_stripe_version)
    quantity = checked_quantity(quantity, default=1)
    price_record = await recurring_price(engine=engine, price=price)
    customer = await customer_for_purchase(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        email=email,
        name=name,
        test_clock_prefix=rules.test_clock_prefix,
    )
    code = None
    if promotion_code:
        code = await checked_promotion_code(
            stripe_client=stripe_client,
            code=promotion_code,
            customer=customer,
            price=price_record,
            quantity=quantity,
        )
    async with starting(
        engine=engine,
        stripe_client=stripe_client,
        rules=rules,
        principal=principal,
        customer=customer,
        idempotency=idempotency,
    ) as start:
        # An unpaid one of the same plan is handed back, unless a code asks for a discount.
        pending = start.own or next(
            (s for s in start.incomplete if code is None and _same_plan(s, price_record, quantity)),
            None,
        )
        if pending is None:
            await cancel_incomplete(start, stripe_client=stripe_client, principal=principal)
            answer = await _create(
                start, stripe_client, principal, price_record, quantity, code, idempotency
            )
        else:  # this request's, or the same plan started before and never paid: hand it back
            async with translated_stripe_errors("retrieve the subscription"):
                answer = await stripe_client.v1.subscriptions.retrieve_async(
                    pending["id"], params={"expand": _INTENTS}
                )
        record = await write_through(
            start.conn, stripe_client=stripe_client, principal=principal, answer=answer
        )
    intent_type, client_secret = _intent(answer.to_dict())
    key = ""
    if mobile_stripe_version:
        made = await ephemeral_key(
            stripe_client=stripe_client,
            stripe_customer_id=customer.stripe_customer_id,
            stripe_version=mobile_stripe_version,
            idempotency=idempotency,
        )
        key = made.secret
    return NewSubscription(
        subscription=record,
        intent_type=intent_type,
        client_secret=client_secret,
        stripe_customer_id=customer.stripe_customer_id,
        ephemeral_key_secret=key,
        trial_applied=record.trial_end is not None,
    )


async def _create(
    start: Start,
    stripe_client: stripe.StripeClient,
    principal: Principal,
    price: PriceRecord,
    quantity: int,
    code: PromotionCode | None,
    idempotency: RequestKey | None,
) -> stripe.Subscription:
    params: SubscriptionCreateParams = {
        "customer": start.customer.stripe_customer_id,
        "items": [{"price": price.id, "quantity": quantity}],
        "payment_behavior": "default_incomplete",
        # The card PaymentSheet collects becomes the subscription's default for renewals.
        "payment_settings": {"save_default_payment_method": "on_subscription"},
        "metadata": {"tatame_principal": principal.key, **request_metadata(idempotency)},
        "expand": [*_INTENTS, *EXPAND_DISCOUNTS],
    }
    if code is not None:
        params["discounts"] = [{"promotion_code": code.id}]
    if start.trial_days is not None:
        params["trial_period_days"] = start.trial_days
    async with translated_stripe_errors("create the subscription"):
        return await stripe_client.v1.subscriptions.create_async(
            params=params, options=stripe_options(idempotency, "subscription")
        )


@dataclass(frozen=True, slots=True)
class PromotionPreview:
    discount: DiscountRecord
    subtotal: int
    total: int
    currency: str


async def preview_promotion_code(
    *,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    rules: BillingRules,
    principal: Principal,
    price: str,
    quantity: int,
    code: str,
    email: str,
    name: str,
) -> PromotionPreview:
    """The discount `code` gives a new subscription of `price`, and its first paid invoice
    before and after it (Stripe's invoice preview with the discount)."""
    quantity = checked_quantity(quantity, default=1)
    record = await recurring_price(engine=engine, price=price)
    customer = await customer_for_purchase(
        engine=engine,
        stripe_client=stripe_client,
        principal=principal,
        email=email,
        name=name,
        test_clock_prefix=rules.test_clock_prefix,
    )
    checked = await checked_promotion_code(
        stripe_client=stripe_client, code=code, customer=customer, price=record, quantity=quantity
    )
    async with translated_stripe_errors("preview the first invoice"):
        invoice = await stripe_client.v1.invoices.create_preview_async(
            params={
                "customer": customer.stripe_customer_id,
                "subscription_details": {"items": [{"price": record.id, "quantity": quantity}]},
                "discounts": [{"promotion_code": checked.id}],
            }
        )
    preview = invoice.to_dict()
    taken = sum(integer(entry["amount"]) for entry in preview.get("total_discount_amounts") or [])
    terms = coupon_terms(checked.coupon)
    return PromotionPreview(
        discount=DiscountRecord(
            id="",
            coupon_id=terms["coupon_id"],
            name=terms["coupon_name"],
            promotion_code_id=checked.id,
            promotion_code=checked.code,
            percent_off=terms["percent_off"],
            amount_off=terms["amount_off"],
            currency=terms["currency"],
            duration=terms["duration"],
            duration_in_months=terms["duration_in_months"],
            start=None,
            end=None,
            amount=taken,
        ),
        subtotal=integer(preview["subtotal"]),
        total=integer(preview["total"]),
        currency=string(preview["currency"]),
    )
