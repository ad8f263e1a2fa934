"""Billing's records as tatame.billing.v1 messages, and the requests' enums as billing's values:
the conversions of the gRPC edge (grpc_api.py keeps the handlers)."""

from collections.abc import Mapping

from tatame.billing.v1 import async_pb2, billing_pb2, pause_pb2

from services.billing import (
    catalog,
    change_previews,
    customers,
    discounts,
    entitlements,
    invoice_payments,
    invoices,
    payment_methods,
    payments,
    pending_payments,
    purchases,
    refunds,
    subscribe,
    subscription_changes,
    subscriptions,
)
from services.billing import overview as overview_
from services.billing.async_payments import PendingPaymentRecord
from services.billing.entitlements import PAUSE_STOPS_SERVICE
from services.billing.live.watch import Change
from services.billing.mirror import Outcome
from services.billing.privacy.erasure import ErasureRecord
from services.common.timestamps import timestamp

PRORATION_BEHAVIORS: Mapping[int, str] = {
    billing_pb2.PRORATION_BEHAVIOR_CREATE_PRORATIONS: "create_prorations",
    billing_pb2.PRORATION_BEHAVIOR_ALWAYS_INVOICE: "always_invoice",
    billing_pb2.PRORATION_BEHAVIOR_NONE: "none",
}

OUTCOMES: Mapping[Outcome, billing_pb2.ApplyStripeEventResponse.Outcome] = {
    Outcome.APPLIED: billing_pb2.ApplyStripeEventResponse.OUTCOME_APPLIED,
    Outcome.DUPLICATE: billing_pb2.ApplyStripeEventResponse.OUTCOME_DUPLICATE,
    Outcome.STALE: billing_pb2.ApplyStripeEventResponse.OUTCOME_STALE,
    Outcome.IGNORED: billing_pb2.ApplyStripeEventResponse.OUTCOME_IGNORED,
}

INTERVALS = {
    "day": billing_pb2.INTERVAL_DAY,
    "week": billing_pb2.INTERVAL_WEEK,
    "month": billing_pb2.INTERVAL_MONTH,
    "year": billing_pb2.INTERVAL_YEAR,
}


def customer_message(record: customers.CustomerRecord) -> billing_pb2.Customer:
    return billing_pb2.Customer(
        principal=record.principal,
        stripe_customer_id=record.stripe_customer_id,
        email=record.email,
        name=record.name,
        create_time=timestamp(record.created_at),
        currency=record.currency or "",
    )


def subscription_message(record: subscriptions.SubscriptionRecord) -> billing_pb2.Subscription:
    return billing_pb2.Subscription(
        id=record.id,
        stripe_customer_id=record.stripe_customer_id,
        status=record.status,
        price_id=record.price_id or "",
        quantity=record.quantity or 0,
        current_period_start=timestamp(record.current_period_start),
        current_period_end=timestamp(record.current_period_end),
        trial_start=timestamp(record.trial_start),
        trial_end=timestamp(record.trial_end),
        cancel_at_period_end=record.cancel_at_period_end,
        cancel_at=timestamp(record.cancel_at),
        canceled_at=timestamp(record.canceled_at),
        ended_at=timestamp(record.ended_at),
        create_time=timestamp(record.created),
        scheduled_price_id=record.scheduled_price_id or "",
        scheduled_quantity=record.scheduled_quantity or 0,
        scheduled_change_time=timestamp(record.scheduled_change_time),
        latest_invoice_id=record.latest_invoice_id or "",
        discounts=[discount_message(d) for d in record.discounts],
        pending_update=None
        if record.pending_price_id is None
        else billing_pb2.PendingUpdate(
            price_id=record.pending_price_id,
            quantity=record.pending_quantity or 0,
            expire_time=timestamp(record.pending_update_expires_at),
        ),
        pause_collection=None
        if record.pause_behavior is None
        else pause_pb2.PauseCollection(
            behavior=record.pause_behavior,
            resume_time=timestamp(record.pause_resumes_at),
            access_end_time=timestamp(
                record.pause_access_end if record.pause_behavior == PAUSE_STOPS_SERVICE else None
            ),
        ),
    )


def discount_message(record: discounts.DiscountRecord) -> billing_pb2.Discount:
    return billing_pb2.Discount(
        id=record.id,
        coupon_id=record.coupon_id,
        name=record.name or "",
        promotion_code_id=record.promotion_code_id or "",
        promotion_code=record.promotion_code or "",
        percent_off=float(record.percent_off or 0),
        amount_off=record.amount_off or 0,
        currency=record.currency or "",
        duration=record.duration,
        duration_in_months=record.duration_in_months or 0,
        start_time=timestamp(record.start),
        end_time=timestamp(record.end),
        amount=record.amount,
    )


def price_message(record: catalog.PriceRecord) -> billing_pb2.Price:
    return billing_pb2.Price(
        id=record.id,
        lookup_key=record.lookup_key or "",
        unit_amount=record.unit_amount,
        currency=record.currency,
        interval=INTERVALS.get(record.interval or "", billing_pb2.INTERVAL_UNSPECIFIED),
        interval_count=record.interval_count or 0,
        type=record.type,
        billing_scheme=record.billing_scheme,
        usage_type=record.usage_type or "",
        tiers_mode=record.tiers_mode or "",
        tiers=[
            billing_pb2.PriceTier(
                up_to=tier["up_to"] or 0,
                unit_amount=tier["unit_amount"],
                flat_amount=tier["flat_amount"],
            )
            for tier in record.tiers or []
        ],
        custom_unit_amount=None
        if record.custom_unit_amount is None
        else billing_pb2.CustomUnitAmount(**record.custom_unit_amount),
        fixed_amount=record.fixed_amount,
        currencies=record.currencies,
        meter=record.meter or "",
    )


def plan_message(record: catalog.PlanRecord) -> billing_pb2.Plan:
    return billing_pb2.Plan(
        product_id=record.product_id,
        name=record.name,
        description=record.description,
        features=record.features,
        prices=[price_message(p) for p in record.prices],
        default_price_id=record.default_price_id or "",
        metadata=record.metadata,
        entitlements=record.entitlements,
    )


def invoice_message(record: invoices.InvoiceRecord) -> billing_pb2.Invoice:
    return billing_pb2.Invoice(
        id=record.id,
        subscription_id=record.subscription_id or "",
        status=record.status or "",
        currency=record.currency,
        amount_due=record.amount_due,
        amount_paid=record.amount_paid,
        amount_remaining=record.amount_remaining,
        total=record.total,
        number=record.number or "",
        hosted_invoice_url=record.hosted_invoice_url or "",
        invoice_pdf=record.invoice_pdf or "",
        create_time=timestamp(record.created),
        period_start=timestamp(record.period_start),
        period_end=timestamp(record.period_end),
        discounts=[discount_message(d) for d in record.discounts],
        total_discount_amount=record.total_discount_amount,
        total_tax=record.total_tax,
        total_excluding_tax=record.total_excluding_tax,
        automatic_tax_status=record.automatic_tax_status or "",
        last_payment=None
        if record.last_payment is None
        else payment_attempt_message(record.last_payment),
    )


def payment_attempt_message(
    record: invoices.PaymentAttemptRecord,
) -> billing_pb2.InvoicePaymentAttempt:
    return billing_pb2.InvoicePaymentAttempt(
        status=record.status,
        reason=record.reason or "",
        error_code=record.error_code or "",
        decline_code=record.decline_code or "",
        error_message=record.error_message or "",
    )


def pay_invoice_response(
    payment: invoice_payments.InvoicePayment,
) -> billing_pb2.PayInvoiceResponse:
    return billing_pb2.PayInvoiceResponse(
        invoice=invoice_message(payment.invoice),
        status=payment.status,
        payment_intent_id=payment.payment_intent_id,
        client_secret=payment.client_secret,
    )


def payment_method_message(
    record: payment_methods.PaymentMethodRecord,
) -> billing_pb2.PaymentMethod:
    return billing_pb2.PaymentMethod(
        id=record.id,
        type=record.type,
        card_brand=record.card_brand or "",
        card_last4=record.card_last4 or "",
        card_exp_month=record.card_exp_month or 0,
        card_exp_year=record.card_exp_year or 0,
        is_default=record.is_default,
    )


def entitlement_message(record: entitlements.EntitlementRecord) -> billing_pb2.Entitlement:
    return billing_pb2.Entitlement(
        feature=record.feature,
        subscription_id=record.subscription_id or "",
        subscription_status=record.subscription_status or "",
        grace_end_time=timestamp(record.grace_end),
        payment_intent_id=record.payment_intent_id or "",
        expire_time=timestamp(record.expires),
    )


def purchase_message(record: purchases.PurchaseRecord) -> billing_pb2.Purchase:
    return billing_pb2.Purchase(
        payment_intent_id=record.payment_intent_id,
        price_id=record.price_id,
        product_id=record.product_id or "",
        product_name=record.product_name or "",
        quantity=record.quantity,
        amount=record.amount,
        currency=record.currency,
        status=record.status,
        amount_refunded=record.amount_refunded,
        receipt_url=record.receipt_url or "",
        paid_time=timestamp(record.paid_at),
    )


def refund_response(record: refunds.RefundRecord) -> billing_pb2.RefundPaymentResponse:
    return billing_pb2.RefundPaymentResponse(
        refund_id=record.refund_id,
        payment_intent_id=record.payment_intent_id,
        charge_id=record.charge_id,
        amount=record.amount,
        currency=record.currency,
        status=record.status,
        amount_refunded=record.amount_refunded,
    )


def new_subscription_response(
    created: subscribe.NewSubscription,
) -> billing_pb2.CreateSubscriptionResponse:
    return billing_pb2.CreateSubscriptionResponse(
        subscription=subscription_message(created.subscription),
        intent_type=created.intent_type,
        client_secret=created.client_secret,
        stripe_customer_id=created.stripe_customer_id,
        ephemeral_key_secret=created.ephemeral_key_secret,
        trial_applied=created.trial_applied,
    )


def setup_intent_response(
    intent: payment_methods.SetupIntentRecord,
) -> billing_pb2.CreateSetupIntentResponse:
    return billing_pb2.CreateSetupIntentResponse(
        setup_intent_id=intent.id,
        client_secret=intent.client_secret,
        stripe_customer_id=intent.stripe_customer_id,
    )


def ephemeral_key_response(
    key: payment_methods.EphemeralKeyRecord,
) -> billing_pb2.CreateEphemeralKeyResponse:
    return billing_pb2.CreateEphemeralKeyResponse(
        secret=key.secret,
        stripe_customer_id=key.stripe_customer_id,
        expire_time=timestamp(key.expires),
    )


def payment_response(payment: payments.PaymentRecord) -> billing_pb2.CreatePaymentResponse:
    return billing_pb2.CreatePaymentResponse(
        payment_intent_id=payment.payment_intent_id,
        client_secret=payment.client_secret,
        amount=payment.amount,
        currency=payment.currency,
        stripe_customer_id=payment.stripe_customer_id,
        tax=payment.tax,
    )


def preview_response(
    preview: change_previews.Preview,
) -> billing_pb2.PreviewSubscriptionChangeResponse:
    return billing_pb2.PreviewSubscriptionChangeResponse(
        amount_due=preview.amount_due,
        currency=preview.currency,
        tax=preview.tax,
        lines=[
            billing_pb2.InvoiceLine(
                description=line.description, amount=line.amount, proration=line.proration
            )
            for line in preview.lines
        ],
        takes_effect=preview.takes_effect,
    )


def update_response(
    updated: subscription_changes.Updated,
) -> billing_pb2.UpdateSubscriptionResponse:
    return billing_pb2.UpdateSubscriptionResponse(
        subscription=subscription_message(updated.subscription),
        takes_effect=updated.takes_effect,
        effective_time=timestamp(updated.effective_time),
        payment=None if updated.payment is None else pending_payment_message(updated.payment),
    )


def pending_payment_message(
    payment: pending_payments.PendingPayment,
) -> billing_pb2.PendingPayment:
    return billing_pb2.PendingPayment(
        invoice_id=payment.invoice_id,
        action=payment.action,
        decline_reason=payment.decline_reason or "",
        client_secret=payment.client_secret,
        amount_due=payment.amount_due,
        currency=payment.currency,
    )


def delayed_payment_message(record: PendingPaymentRecord) -> async_pb2.DelayedPayment:
    return async_pb2.DelayedPayment(
        method=record.method,
        status=record.status,
        amount=record.amount,
        currency=record.currency,
        expire_time=timestamp(record.expires_at),
        hosted_voucher_url=record.hosted_voucher_url or "",
        payment_intent_id=record.payment_intent_id,
        invoice_id=record.invoice_id or "",
    )


def overview_response(
    overview: overview_.Overview,
) -> billing_pb2.GetBillingOverviewResponse:
    subscription, plan, waiting, card = (
        overview.subscription,
        overview.plan,
        overview.invoice_action,
        overview.default_payment_method,
    )
    return billing_pb2.GetBillingOverviewResponse(
        subscription=None if subscription is None else subscription_message(subscription),
        plan=None if plan is None else plan_message(plan),
        entitlements=[entitlement_message(e) for e in overview.entitlements],
        invoice_action=None
        if waiting is None
        else billing_pb2.InvoiceAction(
            invoice=invoice_message(waiting.invoice), action=waiting.action
        ),
        default_payment_method=None if card is None else payment_method_message(card),
        pending_payment=None
        if overview.pending_payment is None
        else delayed_payment_message(overview.pending_payment),
    )


def watch_response(change: Change) -> billing_pb2.WatchBillingResponse:
    return billing_pb2.WatchBillingResponse(
        version=change.version,
        overview=None if change.overview is None else overview_response(change.overview),
    )


def promotion_preview_response(
    preview: subscribe.PromotionPreview,
) -> billing_pb2.PreviewPromotionCodeResponse:
    return billing_pb2.PreviewPromotionCodeResponse(
        discount=discount_message(preview.discount),
        subtotal=preview.subtotal,
        total=preview.total,
        currency=preview.currency,
        tax=preview.tax,
    )


def erasure_message(record: ErasureRecord) -> billing_pb2.Erasure:
    return billing_pb2.Erasure(
        principal=record.principal,
        requested_by=record.requested_by,
        request_time=timestamp(record.requested_at),
        complete_time=timestamp(record.completed_at),
        state=record.state,
        stripe_customer_id=record.stripe_customer_id or "",
        canceled_subscription_ids=record.canceled_subscription_ids,
        inbox_events_scrubbed=record.inbox_events_scrubbed,
    )
