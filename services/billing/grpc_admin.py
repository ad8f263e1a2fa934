"""tatame.billing.v1.BillingAdminService: operators' actions (refunds), served beside
BillingService by the same server; only the operators' CLI may call it (grpc_policy.py)."""

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.grpc_interceptor import current_caller
from services.billing import grpc_messages as messages
from services.billing import refunds
from services.common.rpc import Context, rpc


class BillingAdminServicer(billing_pb2_grpc.BillingAdminServiceServicer):
    def __init__(self, *, engine: AsyncEngine, stripe_client: stripe.StripeClient) -> None:
        self._engine = engine
        self._stripe = stripe_client

    @rpc
    async def RefundPayment(
        self, request: billing_pb2.RefundPaymentRequest, context: Context
    ) -> billing_pb2.RefundPaymentResponse:
        record = await refunds.refund_payment(
            engine=self._engine,
            stripe_client=self._stripe,
            payment_intent_id=request.payment_intent_id,
            amount=request.amount if request.HasField("amount") else None,
            reason=request.reason or None,
            idempotency_key=request.idempotency_key or None,
            refunded_by=current_caller().service,
        )
        return messages.refund_response(record)
