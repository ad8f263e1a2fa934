"""tatame.billing.v1.BillingAdminService: operators' actions (refunds, the notifications'
outbox, revenue metrics), served beside
BillingService by the same server; only the operators' CLI may call it (grpc_policy.py)."""

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc, notifications_pb2, revenue_pb2

from services.auth.grpc_interceptor import current_caller
from services.billing import grpc_messages as messages
from services.billing import refunds
from services.billing.notifications import outbox
from services.billing.notifications import rpc_messages as notification_messages
from services.billing.revenue import rpc_messages as revenue_messages
from services.billing.revenue.queries import revenue_report
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

    @rpc
    async def ListNotifications(
        self, request: notifications_pb2.ListNotificationsRequest, context: Context
    ) -> notifications_pb2.ListNotificationsResponse:
        listed = await outbox.list_notifications(
            engine=self._engine, state=request.state or None, limit=request.limit or 50
        )
        return notifications_pb2.ListNotificationsResponse(
            notifications=[notification_messages.notification(item) for item in listed]
        )

    @rpc
    async def ReplayNotification(
        self, request: notifications_pb2.ReplayNotificationRequest, context: Context
    ) -> notifications_pb2.ReplayNotificationResponse:
        await outbox.replay(engine=self._engine, notification_id=request.id)
        return notifications_pb2.ReplayNotificationResponse()

    @rpc
    async def GetRevenueMetrics(
        self, request: revenue_pb2.GetRevenueMetricsRequest, context: Context
    ) -> revenue_pb2.GetRevenueMetricsResponse:
        since, until = revenue_messages.request_range(request)
        report = await revenue_report(engine=self._engine, since=since, until=until)
        return revenue_messages.revenue_response(report)
