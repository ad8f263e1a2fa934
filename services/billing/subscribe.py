"""Subscribing from the app: the PaymentSheet flow (CreateSubscription), with a promotion code
if the customer has one (checked in services/billing/promotions.py; previewed by
`preview_promotion_code`), and the prices and quantities a subscription may take.

Every start (this one and Checkout's) goes through `starts.starting`: one live subscription per
principal, a free trial on the first one ever. An unfinished subscription of the same plan is
handed back to be paid (or to save its card for a trial), another plan replaces it. A trial is
made, with `BillingRules.trial_requires_payment_method`, to cancel at its end when no payment
method is saved by then (`trial_settings.end_behavior.missing_payment_method`).
"""

from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from stripe.params import SubscriptionCreateParams, SubscriptionCreateParamsPaymentSettings

from services.auth.principal import Principal
from services.billing.catalog import PriceRecord, find_price
from services.billing.currencies import payable_price
from services.billing.customers import customer_for_purchase
from services.billing.discounts import EXPAND_DISCOUNTS, DiscountRecord, coupon_terms
from services.billing.errors import Conflict, InvalidArgument
from services.billing.idempotency import RequestKey, request_metadata, stripe_options
from services.billing.mirror import integer, reference, string
from services.billing.payment_methods import checked_stripe_version, ephemeral_key
from services.billing.promotions import PromotionCode, checked_promotion_code
from services.billing.settings import BillingRules
from services.billing.starts import Start, cancel_unfinished, starting
from services.billing.stripe_errors import translated_stripe_errors
from services.billing.subscriptions import SubscriptionRecord, write_through
from services.billing.tax import invoice_tax
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


def _handed_back(subscription: dict[str, Any], price: PriceRecord, quantity: int) -> bool:
    """Whether an unfinished subscription is handed back to a start of this plan: the same
    plan, with something for PaymentSheet to confirm (a trial's card is saved with its pending
    SetupIntent; one without, its card detached since, is replaced)."""
    if subscription["status"] == "trialing" and subscription.get("pending_setup_intent") is None:
        return False
    items = subscription["items"]["data"]
    return len(items) == 1 and (
        reference(items[0]["price"]),
        items[0]["quantity"],
        subscription["currency"],
    ) == (price.id, quantity, price.currency)


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
    currency: str = "",
    idempotency: RequestKey | None = None,
) -> NewSubscription:
    """A PaymentSheet subscription (default_incomplete) and the client secret that confirms it,
    in `currency` (see currencies.payable_price); with `promotion_code` (as the customer typed
    it), checked first, then applied by Stripe."""
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
    price_record = payable_price(price_record, requested=currency, customer=customer)
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
        # An unfinished one of the same plan is handed back, unless a code asks for a discount.
        pending = start.own or next(
            (
                s
                for s in start.unfinished
                if code is None and _handed_back(s, price_record, quantity)
            ),
            None,
        )
        if pending is None:
            await cancel_unfinished(
                start, engine=engine, stripe_client=stripe_client, principal=principal
            )
            answer = await _create(
                start, stripe_client, rules, principal, price_record, quantity, code, idempotency
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
    rules: BillingRules,
    principal: Principal,
    price: PriceRecord,
    quantity: int,
    code: PromotionCode | None,
    idempotency: RequestKey | None,
) -> stripe.Subscription:
    # The method PaymentSheet collects becomes the subscription's default for renewals; the
    # methods offered are the dashboard's (its invoice template's) unless the operator narrowed
    # them.
    payment_settings: SubscriptionCreateParamsPaymentSettings = {
        "save_default_payment_method": "on_subscription"
    }
    if rules.payment_method_types:
        payment_settings["payment_method_types"] = list(rules.payment_method_types)
    params: SubscriptionCreateParams = {
        "customer": start.customer.stripe_customer_id,
        "items": [{"price": price.id, "quantity": quantity}],
        "currency": price.currency,  # its own, or one of its currency options
        "payment_behavior": "default_incomplete",
        "payment_settings": payment_settings,
        "metadata": {"tatame_principal": principal.key, **request_metadata(idempotency)},
        "expand": [*_INTENTS, *EXPAND_DISCOUNTS],
    }
    if code is not None:
        params["discounts"] = [{"promotion_code": code.id}]
    if rules.automatic_tax:  # refused (`customer_tax_location_invalid`) for an unlocated customer
        params["automatic_tax"] = {"enabled": True}
    if start.trial_days is not None:
        params["trial_period_days"] = start.trial_days
        if rules.trial_requires_payment_method:
            # Without a card saved by the trial's end, Stripe cancels instead of invoicing.
            params["trial_settings"] = {"end_behavior": {"missing_payment_method": "cancel"}}
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
    tax: int  # Stripe Tax's, in `total` (0 with it off, or while the customer has no location)


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
    currency: str = "",
) -> PromotionPreview:
    """The discount `code` gives a new subscription of `price` (in `currency`, as
    `create_subscription` would make it), and its first paid invoice before and after it
    (Stripe's invoice preview with the discount)."""
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
    record = payable_price(record, requested=currency, customer=customer)
    checked = await checked_promotion_code(
        stripe_client=stripe_client, code=code, customer=customer, price=record, quantity=quantity
    )
    async with translated_stripe_errors("preview the first invoice"):
        invoice = await stripe_client.v1.invoices.create_preview_async(
            params={
                "customer": customer.stripe_customer_id,
                "currency": record.currency,
                "subscription_details": {"items": [{"price": record.id, "quantity": quantity}]},
                "discounts": [{"promotion_code": checked.id}],
                **({"automatic_tax": {"enabled": True}} if rules.automatic_tax else {}),
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
        tax=invoice_tax(preview),
    )
