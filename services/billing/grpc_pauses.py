"""BillingService's methods that pause and resume a subscription's payments (pauses.py). A part
of BillingServicer (grpc_api.py), which holds the state they use."""

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc, pause_pb2

from services.billing import grpc_messages as messages
from services.billing import pauses
from services.billing.grpc_policy import acting_principal
from services.billing.settings import BillingRules
from services.common.rpc import Context, rpc
from services.common.timestamps import optional_datetime


class PauseRpcs(billing_pb2_grpc.BillingServiceServicer):
    """PauseSubscription and UnpauseSubscription."""

    _engine: AsyncEngine
    _stripe: stripe.StripeClient
    _rules: BillingRules

    @rpc
    async def PauseSubscription(
        self, request: pause_pb2.PauseSubscriptionRequest, context: Context
    ) -> billing_pb2.PauseSubscriptionResponse:
        record = await pauses.pause_subscription(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            subscription_id=request.id,
            behavior=request.behavior or "void",
            resumes_at=optional_datetime(request, "resume_time"),
            allowed_behaviors=self._rules.pause_behaviors,
        )
        return billing_pb2.PauseSubscriptionResponse(
            subscription=messages.subscription_message(record)
        )

    @rpc
    async def UnpauseSubscription(
        self, request: pause_pb2.UnpauseSubscriptionRequest, context: Context
    ) -> billing_pb2.UnpauseSubscriptionResponse:
        record = await pauses.unpause_subscription(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            subscription_id=request.id,
        )
        return billing_pb2.UnpauseSubscriptionResponse(
            subscription=messages.subscription_message(record)
        )
