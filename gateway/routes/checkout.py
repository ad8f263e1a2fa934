"""Web: Stripe Checkout for new subscriptions and the Billing Portal for managing them."""

from fastapi import APIRouter, Response
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.dependencies import ForManager, IdempotencyKey
from gateway.schemas import (
    CheckoutConfirmationOut,
    CheckoutSessionIn,
    CheckoutSessionOut,
    PortalSessionIn,
    PortalSessionOut,
    error_responses,
)
from gateway.validation import StripeId

router = APIRouter(tags=["web checkout"])
ERRORS = error_responses(400, 401, 404, 409, 503)


@router.post(
    "/v1/checkout/sessions",
    response_model=CheckoutSessionOut,
    status_code=201,
    responses=ERRORS,
    summary="A subscription Checkout Session for the caller (409 when one is live already)",
)
async def create_checkout_session(
    body: CheckoutSessionIn, billing: ForManager, key: IdempotencyKey
) -> Response:
    reply = await billing.create_checkout_session(
        billing_pb2.CreateCheckoutSessionRequest(
            price=body.price,
            success_url=body.success_url,
            cancel_url=body.cancel_url,
            currency=body.currency or "",
        ),
        idempotency_key=key,
    )
    return rendering.json_response(CheckoutSessionOut(id=reply.session_id, url=reply.url), 201)


@router.post(
    "/v1/checkout/sessions/{session_id}/confirm",
    response_model=CheckoutConfirmationOut,
    responses=ERRORS,
    summary="For the return page: the session's subscription, synced from Stripe now",
)
async def confirm_checkout_session(session_id: StripeId, billing: ForManager) -> Response:
    reply = await billing.confirm_checkout_session(
        billing_pb2.ConfirmCheckoutSessionRequest(session_id=session_id)
    )
    subscription = (
        rendering.subscription(reply.subscription) if reply.HasField("subscription") else None
    )
    return rendering.json_response(
        CheckoutConfirmationOut(
            status=reply.status, subscription=subscription, payment_status=reply.payment_status
        )
    )


@router.post(
    "/v1/portal/sessions",
    response_model=PortalSessionOut,
    status_code=201,
    responses=ERRORS,
    summary="A Billing Portal URL for the caller",
)
async def create_portal_session(
    body: PortalSessionIn, billing: ForManager, key: IdempotencyKey
) -> Response:
    reply = await billing.create_portal_session(
        billing_pb2.CreatePortalSessionRequest(return_url=body.return_url),
        idempotency_key=key,
    )
    return rendering.json_response(PortalSessionOut(url=reply.url), 201)
