"""Subscriptions: create for PaymentSheet, list, read, preview and apply changes, cancel, resume."""

from typing import Any

from fastapi import APIRouter, Response
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.dependencies import ForCaller, ForManager, IdempotencyKey, StripeVersionHeader
from gateway.schemas import (
    CancelIn,
    InvoiceLineOut,
    PromotionPreviewIn,
    PromotionPreviewOut,
    SubscriptionCreatedOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPreviewIn,
    SubscriptionPreviewOut,
    SubscriptionsOut,
    SubscriptionUpdateIn,
    SubscriptionUpdateOut,
    error_responses,
)
from gateway.validation import StripeId
from services.common.timestamps import optional_datetime

router = APIRouter(tags=["subscriptions"])
ERRORS = error_responses(400, 401, 402, 404, 409, 503)

PRORATION = {
    "create_prorations": billing_pb2.PRORATION_BEHAVIOR_CREATE_PRORATIONS,
    "always_invoice": billing_pb2.PRORATION_BEHAVIOR_ALWAYS_INVOICE,
    "none": billing_pb2.PRORATION_BEHAVIOR_NONE,
}


def change_fields(
    subscription_id: str, body: SubscriptionPreviewIn | SubscriptionUpdateIn
) -> dict[str, Any]:
    """The request fields a preview and an update share (empty price / 0 quantity: unchanged)."""
    return {
        "id": subscription_id,
        "price": body.price or "",
        "quantity": body.quantity or 0,
        "proration_behavior": PRORATION[body.proration_behavior],
    }


@router.post(
    "/v1/subscriptions",
    response_model=SubscriptionCreatedOut,
    status_code=201,
    responses=ERRORS,
    summary="Start a subscription for PaymentSheet (409 when one is live already), with a "
    "promotion code if the customer has one",
)
async def create_subscription(
    body: SubscriptionIn,
    billing: ForManager,
    key: IdempotencyKey,
    stripe_version: StripeVersionHeader = None,
) -> Response:
    reply = await billing.create_subscription(
        billing_pb2.CreateSubscriptionRequest(
            price=body.price,
            quantity=body.quantity,
            mobile_stripe_version=body.stripe_version or stripe_version or "",
            promotion_code=body.promotion_code or "",
            currency=body.currency or "",
        ),
        idempotency_key=key,
    )
    return rendering.json_response(
        SubscriptionCreatedOut(
            subscription=rendering.subscription(reply.subscription),
            intent_type=reply.intent_type,
            client_secret=reply.client_secret,
            customer_id=reply.stripe_customer_id,
            ephemeral_key_secret=reply.ephemeral_key_secret or None,
            trial_applied=reply.trial_applied,
        ),
        201,
    )


@router.post(
    "/v1/promotion-codes/preview",
    response_model=PromotionPreviewOut,
    responses=ERRORS,
    summary="What a promotion code takes off a new subscription, and its first invoice's total",
)
async def preview_promotion_code(body: PromotionPreviewIn, billing: ForManager) -> Response:
    reply = await billing.preview_promotion_code(
        billing_pb2.PreviewPromotionCodeRequest(
            price=body.price,
            quantity=body.quantity,
            promotion_code=body.promotion_code,
            currency=body.currency or "",
        )
    )
    return rendering.json_response(
        PromotionPreviewOut(
            discount=rendering.discount(reply.discount, with_amount=True),
            subtotal=reply.subtotal,
            total=reply.total,
            currency=reply.currency,
            tax=reply.tax,
        )
    )


@router.get("/v1/subscriptions", response_model=SubscriptionsOut, responses=ERRORS)
async def list_subscriptions(billing: ForCaller) -> Response:
    reply = await billing.list_subscriptions(billing_pb2.ListSubscriptionsRequest())
    return rendering.json_response(
        SubscriptionsOut(subscriptions=[rendering.subscription(s) for s in reply.subscriptions])
    )


@router.get("/v1/subscriptions/{subscription_id}", response_model=SubscriptionOut, responses=ERRORS)
async def get_subscription(subscription_id: StripeId, billing: ForCaller) -> Response:
    reply = await billing.get_subscription(billing_pb2.GetSubscriptionRequest(id=subscription_id))
    return rendering.json_response(rendering.subscription(reply.subscription))


@router.post(
    "/v1/subscriptions/{subscription_id}/preview",
    response_model=SubscriptionPreviewOut,
    responses=ERRORS,
    summary="What a change of price and/or quantity would bill now (Stripe's invoice preview)",
)
async def preview_change(
    subscription_id: StripeId, body: SubscriptionPreviewIn, billing: ForManager
) -> Response:
    reply = await billing.preview_subscription_change(
        billing_pb2.PreviewSubscriptionChangeRequest(**change_fields(subscription_id, body)),
    )
    return rendering.json_response(
        SubscriptionPreviewOut(
            amount_due=reply.amount_due,
            currency=reply.currency,
            lines=[
                InvoiceLineOut(description=x.description, amount=x.amount, proration=x.proration)
                for x in reply.lines
            ],
            takes_effect=reply.takes_effect,
            tax=reply.tax,
        )
    )


@router.patch(
    "/v1/subscriptions/{subscription_id}",
    response_model=SubscriptionUpdateOut,
    responses=ERRORS,
    summary="Change price and/or quantity: upgrades now (once paid), downgrades at period end",
)
async def update_subscription(
    subscription_id: StripeId, body: SubscriptionUpdateIn, billing: ForManager, key: IdempotencyKey
) -> Response:
    reply = await billing.update_subscription(
        billing_pb2.UpdateSubscriptionRequest(**change_fields(subscription_id, body)),
        idempotency_key=key,
    )
    return rendering.json_response(
        SubscriptionUpdateOut(
            subscription=rendering.subscription(reply.subscription),
            takes_effect=reply.takes_effect,
            effective_at=optional_datetime(reply, "effective_time"),
            payment=rendering.pending_payment(reply.payment) if reply.HasField("payment") else None,
        )
    )


@router.post(
    "/v1/subscriptions/{subscription_id}/cancel",
    response_model=SubscriptionOut,
    responses=ERRORS,
    summary="Cancel at the period end (default) or now",
)
async def cancel_subscription(
    subscription_id: StripeId, billing: ForManager, body: CancelIn | None = None
) -> Response:
    reply = await billing.cancel_subscription(
        billing_pb2.CancelSubscriptionRequest(
            id=subscription_id, immediately=bool(body and body.immediately)
        ),
    )
    return rendering.json_response(rendering.subscription(reply.subscription))


@router.post(
    "/v1/subscriptions/{subscription_id}/resume",
    response_model=SubscriptionOut,
    responses=ERRORS,
    summary="Undo a cancellation at period end",
)
async def resume_subscription(subscription_id: StripeId, billing: ForManager) -> Response:
    reply = await billing.resume_subscription(
        billing_pb2.ResumeSubscriptionRequest(id=subscription_id)
    )
    return rendering.json_response(rendering.subscription(reply.subscription))
