"""Paying: setup intents and ephemeral keys for PaymentSheet, saved payment methods, invoices,
one-time purchases of catalog prices."""

from fastapi import APIRouter, Response
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.dependencies import ForCaller, ForManager, IdempotencyKey, StripeVersionHeader
from gateway.schemas import (
    EphemeralKeyIn,
    EphemeralKeyOut,
    InvoicePayIn,
    InvoicePaymentOut,
    InvoicesOut,
    PaymentIn,
    PaymentMethodOut,
    PaymentMethodsOut,
    PaymentOut,
    PurchasesOut,
    SetupIntentOut,
    error_responses,
)
from gateway.validation import StripeId
from services.common.http import ApiError
from services.common.timestamps import optional_datetime

router = APIRouter(tags=["payments"])
ERRORS = error_responses(400, 401, 404, 409, 503)


@router.post("/v1/setup-intents", response_model=SetupIntentOut, status_code=201, responses=ERRORS)
async def create_setup_intent(billing: ForManager, key: IdempotencyKey) -> Response:
    reply = await billing.create_setup_intent(
        billing_pb2.CreateSetupIntentRequest(), idempotency_key=key
    )
    return rendering.json_response(
        SetupIntentOut(
            id=reply.setup_intent_id,
            client_secret=reply.client_secret,
            customer_id=reply.stripe_customer_id,
        ),
        201,
    )


@router.post(
    "/v1/ephemeral-keys",
    response_model=EphemeralKeyOut,
    status_code=201,
    responses=ERRORS,
    summary="An ephemeral key for the mobile SDK (its Stripe-Version in the body or header)",
)
async def create_ephemeral_key(
    billing: ForManager,
    key: IdempotencyKey,
    body: EphemeralKeyIn | None = None,
    stripe_version: StripeVersionHeader = None,
) -> Response:
    version = (body.stripe_version if body else None) or stripe_version
    if not version:
        raise ApiError(
            400, "invalid_request", "stripe_version (or a Stripe-Version header) is required"
        )
    reply = await billing.create_ephemeral_key(
        billing_pb2.CreateEphemeralKeyRequest(stripe_version=version),
        idempotency_key=key,
    )
    return rendering.json_response(
        EphemeralKeyOut(
            secret=reply.secret,
            customer_id=reply.stripe_customer_id,
            expires_at=optional_datetime(reply, "expire_time"),
        ),
        201,
    )


@router.get("/v1/payment-methods", response_model=PaymentMethodsOut, responses=ERRORS)
async def list_payment_methods(billing: ForCaller) -> Response:
    reply = await billing.list_payment_methods(billing_pb2.ListPaymentMethodsRequest())
    return rendering.json_response(
        PaymentMethodsOut(
            payment_methods=[rendering.payment_method(p) for p in reply.payment_methods]
        )
    )


@router.post(
    "/v1/payment-methods/{payment_method_id}/default",
    response_model=PaymentMethodOut,
    responses=ERRORS,
    summary="Make a saved payment method the default for invoices",
)
async def set_default_payment_method(payment_method_id: StripeId, billing: ForManager) -> Response:
    reply = await billing.set_default_payment_method(
        billing_pb2.SetDefaultPaymentMethodRequest(id=payment_method_id)
    )
    return rendering.json_response(rendering.payment_method(reply.payment_method))


@router.delete("/v1/payment-methods/{payment_method_id}", status_code=204, responses=ERRORS)
async def detach_payment_method(payment_method_id: StripeId, billing: ForManager) -> Response:
    await billing.detach_payment_method(
        billing_pb2.DetachPaymentMethodRequest(id=payment_method_id)
    )
    return Response(status_code=204)


@router.get("/v1/invoices", response_model=InvoicesOut, responses=ERRORS)
async def list_invoices(billing: ForCaller) -> Response:
    reply = await billing.list_invoices(billing_pb2.ListInvoicesRequest())
    return rendering.json_response(
        InvoicesOut(invoices=[rendering.invoice(i) for i in reply.invoices])
    )


@router.post(
    "/v1/invoices/{invoice_id}/pay",
    response_model=InvoicePaymentOut,
    responses=error_responses(400, 401, 402, 404, 409, 503),
    summary="Pay an open invoice of the caller's now (a failed renewal), with a saved card",
    description="A declined card is 402 with a stable `code` (card_declined, insufficient_funds, "
    "expired_card, incorrect_card_details, payment_authentication_failed, "
    "payment_processing_error); an invoice that is not open is 400 `invoice_not_open`.",
)
async def pay_invoice(
    invoice_id: StripeId, billing: ForManager, key: IdempotencyKey, body: InvoicePayIn | None = None
) -> Response:
    reply = await billing.pay_invoice(
        billing_pb2.PayInvoiceRequest(
            id=invoice_id, payment_method=(body.payment_method if body else None) or ""
        ),
        idempotency_key=key,
    )
    return rendering.json_response(
        InvoicePaymentOut(
            status=reply.status,
            client_secret=reply.client_secret or None,
            payment_intent_id=reply.payment_intent_id or None,
            invoice=rendering.invoice(reply.invoice),
        )
    )


@router.post(
    "/v1/payments",
    response_model=PaymentOut,
    status_code=201,
    responses=ERRORS,
    summary="A one-time purchase of a catalog price; the amount comes from the catalog",
)
async def create_payment(body: PaymentIn, billing: ForManager, key: IdempotencyKey) -> Response:
    reply = await billing.create_payment(
        billing_pb2.CreatePaymentRequest(
            price=body.price, quantity=body.quantity, currency=body.currency or ""
        ),
        idempotency_key=key,
    )
    return rendering.json_response(
        PaymentOut(
            id=reply.payment_intent_id,
            client_secret=reply.client_secret,
            amount=reply.amount,
            currency=reply.currency,
            customer_id=reply.stripe_customer_id,
            tax=reply.tax,
        ),
        201,
    )


@router.get(
    "/v1/purchases",
    response_model=PurchasesOut,
    responses=ERRORS,
    summary="The caller's paid one-time purchases, newest first, with refunds and disputes",
)
async def list_purchases(billing: ForCaller) -> Response:
    reply = await billing.list_purchases(billing_pb2.ListPurchasesRequest())
    return rendering.json_response(
        PurchasesOut(purchases=[rendering.purchase(p) for p in reply.purchases])
    )
