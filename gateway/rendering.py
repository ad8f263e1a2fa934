"""Billing's gRPC messages as the gateway's REST shapes, and the JSON response they leave in."""

from datetime import UTC

from fastapi import Response
from pydantic import BaseModel
from tatame.billing.v1 import async_pb2, billing_pb2

from gateway.schemas import (
    BillingOverviewOut,
    CustomerOut,
    CustomUnitAmountOut,
    DelayedPaymentOut,
    DiscountOut,
    EntitlementOut,
    InvoiceActionOut,
    InvoiceOut,
    InvoicePaymentAttemptOut,
    PauseCollectionOut,
    PaymentMethodOut,
    PendingPaymentOut,
    PendingUpdateOut,
    PlanOut,
    PriceOut,
    PriceTierOut,
    PurchaseOut,
    SubscriptionOut,
)
from services.common.timestamps import optional_datetime

INTERVAL_NAMES = {
    billing_pb2.INTERVAL_DAY: "day",
    billing_pb2.INTERVAL_WEEK: "week",
    billing_pb2.INTERVAL_MONTH: "month",
    billing_pb2.INTERVAL_YEAR: "year",
}


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """`model` as JSON without FastAPI's second validation pass (the model is already typed)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def customer(message: billing_pb2.Customer) -> CustomerOut:
    return CustomerOut(
        stripe_customer_id=message.stripe_customer_id,
        email=message.email,
        name=message.name,
        created_at=message.create_time.ToDatetime(tzinfo=UTC),
        currency=message.currency or None,
    )


def subscription(message: billing_pb2.Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=message.id,
        status=message.status,
        price_id=message.price_id,
        quantity=message.quantity,
        current_period_start=optional_datetime(message, "current_period_start"),
        current_period_end=optional_datetime(message, "current_period_end"),
        trial_start=optional_datetime(message, "trial_start"),
        trial_end=optional_datetime(message, "trial_end"),
        cancel_at_period_end=message.cancel_at_period_end,
        cancel_at=optional_datetime(message, "cancel_at"),
        canceled_at=optional_datetime(message, "canceled_at"),
        ended_at=optional_datetime(message, "ended_at"),
        created_at=optional_datetime(message, "create_time"),
        scheduled_price_id=message.scheduled_price_id or None,
        scheduled_change_at=optional_datetime(message, "scheduled_change_time"),
        discounts=[discount(d) for d in message.discounts],
        pending_update=PendingUpdateOut(
            price_id=message.pending_update.price_id,
            quantity=message.pending_update.quantity,
            expires_at=message.pending_update.expire_time.ToDatetime(tzinfo=UTC),
        )
        if message.HasField("pending_update")
        else None,
        pause_collection=PauseCollectionOut(
            behavior=message.pause_collection.behavior,
            resumes_at=optional_datetime(message.pause_collection, "resume_time"),
            access_ends_at=optional_datetime(message.pause_collection, "access_end_time"),
        )
        if message.HasField("pause_collection")
        else None,
    )


def pending_payment(message: billing_pb2.PendingPayment) -> PendingPaymentOut:
    return PendingPaymentOut(
        invoice_id=message.invoice_id,
        action=message.action,
        decline_reason=message.decline_reason or None,
        client_secret=message.client_secret,
        amount_due=message.amount_due,
        currency=message.currency,
    )


def discount(message: billing_pb2.Discount, *, with_amount: bool = False) -> DiscountOut:
    return DiscountOut(
        id=message.id or None,
        coupon_id=message.coupon_id,
        name=message.name or None,
        promotion_code=message.promotion_code or None,
        percent_off=message.percent_off or None,
        amount_off=message.amount_off or None,
        currency=message.currency or None,
        duration=message.duration,
        duration_in_months=message.duration_in_months or None,
        ends_at=optional_datetime(message, "end_time"),
        amount=message.amount if with_amount else None,
    )


def _per_unit_metered(message: billing_pb2.Price) -> bool:
    """A metered price billed per unit of its meter: its unit_amount is the price of one unit."""
    return message.usage_type == "metered" and message.billing_scheme == "per_unit"


def price(message: billing_pb2.Price, interval: str) -> PriceOut:
    return PriceOut(
        id=message.id,
        lookup_key=message.lookup_key or None,
        unit_amount=message.unit_amount
        if message.fixed_amount or _per_unit_metered(message)
        else None,
        currency=message.currency,
        interval=interval,
        interval_count=message.interval_count,
        billing_scheme=message.billing_scheme or "per_unit",
        usage_type=message.usage_type or None,
        tiers_mode=message.tiers_mode or None,
        tiers=[
            PriceTierOut(
                up_to=t.up_to or None,
                unit_amount=t.unit_amount if t.HasField("unit_amount") else None,
                flat_amount=t.flat_amount if t.HasField("flat_amount") else None,
            )
            for t in message.tiers
        ]
        or None,
        custom_unit_amount=None
        if not message.HasField("custom_unit_amount")
        else CustomUnitAmountOut(
            **{
                name: getattr(message.custom_unit_amount, name)
                if message.custom_unit_amount.HasField(name)
                else None
                for name in ("minimum", "maximum", "preset")
            }
        ),
        fixed_amount=message.fixed_amount,
        currencies=list(message.currencies),
        meter=message.meter or None,
    )


def plan(message: billing_pb2.Plan) -> PlanOut:
    return PlanOut(
        id=message.product_id,
        name=message.name,
        description=message.description,
        features=list(message.features),
        prices=[price(x, INTERVAL_NAMES.get(x.interval, "unknown")) for x in message.prices],
    )


def invoice(message: billing_pb2.Invoice) -> InvoiceOut:
    return InvoiceOut(
        id=message.id,
        subscription_id=message.subscription_id or None,
        status=message.status,
        currency=message.currency,
        amount_due=message.amount_due,
        amount_paid=message.amount_paid,
        amount_remaining=message.amount_remaining,
        total=message.total,
        number=message.number or None,
        hosted_invoice_url=message.hosted_invoice_url or None,
        invoice_pdf=message.invoice_pdf or None,
        created_at=optional_datetime(message, "create_time"),
        period_start=optional_datetime(message, "period_start"),
        period_end=optional_datetime(message, "period_end"),
        total_discount_amount=message.total_discount_amount,
        total_tax=message.total_tax,
        total_excluding_tax=message.total_excluding_tax,
        automatic_tax_status=message.automatic_tax_status or None,
        discounts=[discount(d, with_amount=True) for d in message.discounts],
        last_payment=None
        if not message.HasField("last_payment")
        else InvoicePaymentAttemptOut(
            status=message.last_payment.status,
            reason=message.last_payment.reason or None,
            decline_code=message.last_payment.decline_code or None,
            message=message.last_payment.error_message or None,
        ),
    )


def payment_method(message: billing_pb2.PaymentMethod) -> PaymentMethodOut:
    return PaymentMethodOut(
        id=message.id,
        type=message.type,
        card_brand=message.card_brand or None,
        card_last4=message.card_last4 or None,
        card_exp_month=message.card_exp_month or None,
        card_exp_year=message.card_exp_year or None,
        is_default=message.is_default,
    )


def entitlement(message: billing_pb2.Entitlement) -> EntitlementOut:
    return EntitlementOut(
        feature=message.feature,
        subscription_id=message.subscription_id,
        subscription_status=message.subscription_status,
        grace_ends_at=optional_datetime(message, "grace_end_time"),
        payment_intent_id=message.payment_intent_id or None,
        expires_at=optional_datetime(message, "expire_time"),
    )


def purchase(message: billing_pb2.Purchase) -> PurchaseOut:
    return PurchaseOut(
        id=message.payment_intent_id,
        price_id=message.price_id,
        product_id=message.product_id or None,
        product_name=message.product_name or None,
        quantity=message.quantity,
        amount=message.amount,
        currency=message.currency,
        status=message.status,
        amount_refunded=message.amount_refunded,
        receipt_url=message.receipt_url or None,
        paid_at=optional_datetime(message, "paid_time"),
    )


def overview(message: billing_pb2.GetBillingOverviewResponse) -> BillingOverviewOut:
    """The billing screen (GET /v1/billing, and each `billing.updated` of its stream)."""
    waiting = message.invoice_action
    return BillingOverviewOut(
        subscription=subscription(message.subscription)
        if message.HasField("subscription")
        else None,
        plan=plan(message.plan) if message.HasField("plan") else None,
        entitlements=[entitlement(e) for e in message.entitlements],
        invoice_action=InvoiceActionOut(invoice=invoice(waiting.invoice), action=waiting.action)
        if message.HasField("invoice_action")
        else None,
        default_payment_method=payment_method(message.default_payment_method)
        if message.HasField("default_payment_method")
        else None,
        pending_payment=delayed_payment(message.pending_payment)
        if message.HasField("pending_payment")
        else None,
    )


def delayed_payment(message: async_pb2.DelayedPayment) -> DelayedPaymentOut:
    return DelayedPaymentOut(
        method=message.method,
        status=message.status,
        amount=message.amount,
        currency=message.currency,
        expires_at=optional_datetime(message, "expire_time"),
        hosted_voucher_url=message.hosted_voucher_url or None,
        payment_intent_id=message.payment_intent_id,
        invoice_id=message.invoice_id or None,
    )
