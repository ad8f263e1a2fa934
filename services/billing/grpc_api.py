"""The gRPC edge of billing: the handlers and the server. Who may call each method is in
grpc_policy.py, messages are converted in grpc_messages.py, and failures become statuses in
services/common/rpc.py."""

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta

import grpc
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc, notifications_pb2

from services.auth.grpc_interceptor import ServiceAuthInterceptor
from services.auth.service_credentials import ServiceTokenVerifier
from services.billing import (
    cancellations,
    catalog,
    change_previews,
    checkout,
    customers,
    entitlements,
    event_batch,
    events,
    invoice_payments,
    invoices,
    overview,
    payment_methods,
    payments,
    purchases,
    subscribe,
    subscription_changes,
    subscriptions,
)
from services.billing import grpc_messages as messages
from services.billing.grpc_admin import BillingAdminServicer
from services.billing.grpc_policy import (
    ADMIN_SERVICE_NAME,
    SERVICE_NAME,
    acting_principal,
    method_policy,
)
from services.billing.grpc_policy import GATEWAY as GATEWAY  # re-exported for callers
from services.billing.grpc_policy import WEBHOOKS_RELAY as WEBHOOKS_RELAY
from services.billing.idempotency import RequestKey, idempotent
from services.billing.live.feed import ChangeFeed
from services.billing.live.watch import Watchers
from services.billing.mirror import Outcome
from services.billing.notifications import devices
from services.billing.notifications import rpc_messages as notification_messages
from services.billing.privacy import clerk_events, erasure, export
from services.billing.privacy.inbox import InboxClient
from services.billing.settings import BillingRules
from services.common.db import database_reachable, psycopg_conninfo
from services.common.errors import ErrorReason
from services.common.grpc_input import RefuseNulInterceptor
from services.common.grpc_server import (
    READINESS_INTERVAL_SECONDS,
    GrpcServer,
    start_grpc_server,
)
from services.common.rpc import Context, Failure, failure_of, rpc, stream_rpc

log = logging.getLogger(__name__)

# Of an ApplyStripeEvents call's deadline, the time kept back to answer for every event.
_ANSWER_MARGIN_SECONDS = 0.5


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    """tatame.billing.v1.BillingService over the use cases of billing."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        stripe_client: stripe.StripeClient,
        rules: BillingRules,
        watchers: Watchers,
        inbox: InboxClient | None = None,
    ) -> None:
        self._engine = engine
        self._watchers = watchers
        self._stripe = stripe_client
        self._rules = rules
        self._inbox = inbox
        self._grace = timedelta(days=rules.past_due_grace_days)

    @rpc
    async def ListPlans(
        self, request: billing_pb2.ListPlansRequest, context: Context
    ) -> billing_pb2.ListPlansResponse:
        plans = await catalog.list_plans(
            engine=self._engine, include_one_time=request.include_one_time
        )
        return billing_pb2.ListPlansResponse(plans=[messages.plan_message(p) for p in plans])

    @rpc
    async def GetCustomer(
        self, request: billing_pb2.GetCustomerRequest, context: Context
    ) -> billing_pb2.GetCustomerResponse:
        principal = await acting_principal(context)
        record = await customers.get_customer(engine=self._engine, principal=principal)
        return billing_pb2.GetCustomerResponse(customer=messages.customer_message(record))

    @rpc
    @idempotent(billing_pb2.CreateCustomerResponse)
    async def CreateCustomer(
        self,
        request: billing_pb2.CreateCustomerRequest,
        context: Context,
        idempotency: RequestKey | None,
    ) -> billing_pb2.CreateCustomerResponse:
        # Stripe's key comes from the contact details (customers.idempotency_key): any retry,
        # with or without the client's key, must reach the same one.
        principal = await acting_principal(context)
        record, created = await customers.create_or_get_customer(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=principal,
            email=request.email,
            name=request.name,
            test_clock_prefix=self._rules.test_clock_prefix,
        )
        return billing_pb2.CreateCustomerResponse(
            customer=messages.customer_message(record), created=created
        )

    @rpc
    async def ListSubscriptions(
        self, request: billing_pb2.ListSubscriptionsRequest, context: Context
    ) -> billing_pb2.ListSubscriptionsResponse:
        principal = await acting_principal(context)
        records = await subscriptions.list_subscriptions(engine=self._engine, principal=principal)
        return billing_pb2.ListSubscriptionsResponse(
            subscriptions=[messages.subscription_message(r) for r in records]
        )

    @rpc
    @idempotent(billing_pb2.CreateCheckoutSessionResponse)
    async def CreateCheckoutSession(
        self,
        request: billing_pb2.CreateCheckoutSessionRequest,
        context: Context,
        idempotency: RequestKey | None,
    ) -> billing_pb2.CreateCheckoutSessionResponse:
        session = await checkout.create_checkout_session(
            engine=self._engine,
            stripe_client=self._stripe,
            rules=self._rules,
            principal=await acting_principal(context),
            price=request.price,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            email=request.email,
            name=request.name,
            idempotency=idempotency,
        )
        return billing_pb2.CreateCheckoutSessionResponse(session_id=session.id, url=session.url)

    @rpc
    async def ConfirmCheckoutSession(
        self, request: billing_pb2.ConfirmCheckoutSessionRequest, context: Context
    ) -> billing_pb2.ConfirmCheckoutSessionResponse:
        confirmed = await checkout.confirm_checkout_session(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            session_id=request.session_id,
        )
        subscription = confirmed.subscription
        return billing_pb2.ConfirmCheckoutSessionResponse(
            status=confirmed.status,
            subscription=None
            if subscription is None
            else messages.subscription_message(subscription),
        )

    @rpc
    @idempotent(billing_pb2.CreatePortalSessionResponse)
    async def CreatePortalSession(
        self,
        request: billing_pb2.CreatePortalSessionRequest,
        context: Context,
        idempotency: RequestKey | None,
    ) -> billing_pb2.CreatePortalSessionResponse:
        url = await checkout.create_portal_session(
            engine=self._engine,
            stripe_client=self._stripe,
            rules=self._rules,
            principal=await acting_principal(context),
            return_url=request.return_url,
            idempotency=idempotency,
        )
        return billing_pb2.CreatePortalSessionResponse(url=url)

    @rpc
    @idempotent(billing_pb2.CreateSubscriptionResponse)
    async def CreateSubscription(
        self,
        request: billing_pb2.CreateSubscriptionRequest,
        context: Context,
        idempotency: RequestKey | None,
    ) -> billing_pb2.CreateSubscriptionResponse:
        created = await subscribe.create_subscription(
            engine=self._engine,
            stripe_client=self._stripe,
            rules=self._rules,
            principal=await acting_principal(context),
            price=request.price,
            quantity=request.quantity,
            email=request.email,
            name=request.name,
            mobile_stripe_version=request.mobile_stripe_version,
            promotion_code=request.promotion_code,
            idempotency=idempotency,
        )
        return messages.new_subscription_response(created)

    @rpc
    async def PreviewPromotionCode(
        self, request: billing_pb2.PreviewPromotionCodeRequest, context: Context
    ) -> billing_pb2.PreviewPromotionCodeResponse:
        preview = await subscribe.preview_promotion_code(
            engine=self._engine,
            stripe_client=self._stripe,
            rules=self._rules,
            principal=await acting_principal(context),
            price=request.price,
            quantity=request.quantity,
            code=request.promotion_code,
            email=request.email,
            name=request.name,
        )
        return messages.promotion_preview_response(preview)

    @rpc
    @idempotent(billing_pb2.CreateSetupIntentResponse)
    async def CreateSetupIntent(
        self,
        request: billing_pb2.CreateSetupIntentRequest,
        context: Context,
        idempotency: RequestKey | None,
    ) -> billing_pb2.CreateSetupIntentResponse:
        intent = await payment_methods.create_setup_intent(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            idempotency=idempotency,
        )
        return messages.setup_intent_response(intent)

    @rpc
    @idempotent(billing_pb2.CreateEphemeralKeyResponse)
    async def CreateEphemeralKey(
        self,
        request: billing_pb2.CreateEphemeralKeyRequest,
        context: Context,
        idempotency: RequestKey | None,
    ) -> billing_pb2.CreateEphemeralKeyResponse:
        key = await payment_methods.create_ephemeral_key(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            stripe_version=request.stripe_version,
            idempotency=idempotency,
        )
        return messages.ephemeral_key_response(key)

    @rpc
    @idempotent(billing_pb2.CreatePaymentResponse)
    async def CreatePayment(
        self,
        request: billing_pb2.CreatePaymentRequest,
        context: Context,
        idempotency: RequestKey | None,
    ) -> billing_pb2.CreatePaymentResponse:
        payment = await payments.create_payment(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            price=request.price,
            quantity=request.quantity,
            idempotency=idempotency,
        )
        return messages.payment_response(payment)

    @rpc
    async def GetSubscription(
        self, request: billing_pb2.GetSubscriptionRequest, context: Context
    ) -> billing_pb2.GetSubscriptionResponse:
        record = await subscriptions.get_subscription(
            engine=self._engine,
            principal=await acting_principal(context),
            subscription_id=request.id,
        )
        return billing_pb2.GetSubscriptionResponse(
            subscription=messages.subscription_message(record)
        )

    @rpc
    async def PreviewSubscriptionChange(
        self, request: billing_pb2.PreviewSubscriptionChangeRequest, context: Context
    ) -> billing_pb2.PreviewSubscriptionChangeResponse:
        preview = await change_previews.preview_change(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            subscription_id=request.id,
            price=request.price,
            quantity=request.quantity,
            proration_behavior=messages.PRORATION_BEHAVIORS.get(request.proration_behavior),
        )
        return messages.preview_response(preview)

    @rpc
    @idempotent(billing_pb2.UpdateSubscriptionResponse)
    async def UpdateSubscription(
        self,
        request: billing_pb2.UpdateSubscriptionRequest,
        context: Context,
        idempotency: RequestKey | None,
    ) -> billing_pb2.UpdateSubscriptionResponse:
        updated = await subscription_changes.update_subscription(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            subscription_id=request.id,
            price=request.price,
            quantity=request.quantity,
            proration_behavior=messages.PRORATION_BEHAVIORS.get(request.proration_behavior),
            idempotency=idempotency,
        )
        return messages.update_response(updated)

    @rpc
    async def CancelSubscription(
        self, request: billing_pb2.CancelSubscriptionRequest, context: Context
    ) -> billing_pb2.CancelSubscriptionResponse:
        record = await cancellations.cancel_subscription(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            subscription_id=request.id,
            immediately=request.immediately,
        )
        return billing_pb2.CancelSubscriptionResponse(
            subscription=messages.subscription_message(record)
        )

    @rpc
    async def ResumeSubscription(
        self, request: billing_pb2.ResumeSubscriptionRequest, context: Context
    ) -> billing_pb2.ResumeSubscriptionResponse:
        record = await cancellations.resume_subscription(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            subscription_id=request.id,
        )
        return billing_pb2.ResumeSubscriptionResponse(
            subscription=messages.subscription_message(record)
        )

    @rpc
    async def ListInvoices(
        self, request: billing_pb2.ListInvoicesRequest, context: Context
    ) -> billing_pb2.ListInvoicesResponse:
        records = await invoices.list_invoices(
            engine=self._engine, principal=await acting_principal(context)
        )
        return billing_pb2.ListInvoicesResponse(
            invoices=[messages.invoice_message(r) for r in records]
        )

    @rpc
    async def ListPaymentMethods(
        self, request: billing_pb2.ListPaymentMethodsRequest, context: Context
    ) -> billing_pb2.ListPaymentMethodsResponse:
        records = await payment_methods.list_payment_methods(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
        )
        return billing_pb2.ListPaymentMethodsResponse(
            payment_methods=[messages.payment_method_message(r) for r in records]
        )

    @rpc
    async def SetDefaultPaymentMethod(
        self, request: billing_pb2.SetDefaultPaymentMethodRequest, context: Context
    ) -> billing_pb2.SetDefaultPaymentMethodResponse:
        record = await payment_methods.set_default_payment_method(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            payment_method_id=request.id,
        )
        return billing_pb2.SetDefaultPaymentMethodResponse(
            payment_method=messages.payment_method_message(record)
        )

    @rpc
    async def DetachPaymentMethod(
        self, request: billing_pb2.DetachPaymentMethodRequest, context: Context
    ) -> billing_pb2.DetachPaymentMethodResponse:
        await payment_methods.detach_payment_method(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            payment_method_id=request.id,
        )
        return billing_pb2.DetachPaymentMethodResponse()

    @rpc
    async def ListEntitlements(
        self, request: billing_pb2.ListEntitlementsRequest, context: Context
    ) -> billing_pb2.ListEntitlementsResponse:
        records = await entitlements.list_entitlements(
            engine=self._engine,
            principal=await acting_principal(context),
            grace=self._grace,
            dispute_policy=self._rules.dispute_policy,
        )
        return billing_pb2.ListEntitlementsResponse(
            entitlements=[messages.entitlement_message(r) for r in records]
        )

    @rpc
    async def CheckEntitlement(
        self, request: billing_pb2.CheckEntitlementRequest, context: Context
    ) -> billing_pb2.CheckEntitlementResponse:
        record = await entitlements.check_entitlement(
            engine=self._engine,
            principal=await acting_principal(context),
            feature=request.feature,
            grace=self._grace,
            dispute_policy=self._rules.dispute_policy,
        )
        if record is None:
            return billing_pb2.CheckEntitlementResponse(entitled=False)
        return billing_pb2.CheckEntitlementResponse(
            entitled=True, entitlement=messages.entitlement_message(record)
        )

    @rpc
    async def ListPurchases(
        self, request: billing_pb2.ListPurchasesRequest, context: Context
    ) -> billing_pb2.ListPurchasesResponse:
        records = await purchases.list_purchases(
            engine=self._engine, principal=await acting_principal(context)
        )
        return billing_pb2.ListPurchasesResponse(
            purchases=[messages.purchase_message(r) for r in records]
        )

    @rpc
    @idempotent(billing_pb2.PayInvoiceResponse)
    async def PayInvoice(
        self,
        request: billing_pb2.PayInvoiceRequest,
        context: Context,
        idempotency: RequestKey | None,
    ) -> billing_pb2.PayInvoiceResponse:
        payment = await invoice_payments.pay_invoice(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            invoice_id=request.id,
            payment_method_id=request.payment_method,
            idempotency=idempotency,
        )
        return messages.pay_invoice_response(payment)

    @rpc
    async def GetBillingOverview(
        self, request: billing_pb2.GetBillingOverviewRequest, context: Context
    ) -> billing_pb2.GetBillingOverviewResponse:
        summary = await overview.billing_overview(
            engine=self._engine, principal=await acting_principal(context), grace=self._grace
        )
        return messages.overview_response(summary)

    @rpc
    async def EraseAccount(
        self, request: billing_pb2.EraseAccountRequest, context: Context
    ) -> billing_pb2.EraseAccountResponse:
        record = await erasure.erase(
            engine=self._engine,
            stripe_client=self._stripe,
            inbox=self._inbox,
            principal=await acting_principal(context),
            requested_by=erasure.API,
        )
        return billing_pb2.EraseAccountResponse(erasure=messages.erasure_message(record))

    @rpc
    async def ExportAccount(
        self, request: billing_pb2.ExportAccountRequest, context: Context
    ) -> billing_pb2.ExportAccountResponse:
        document = await export.export_account(
            engine=self._engine, inbox=self._inbox, principal=await acting_principal(context)
        )
        return billing_pb2.ExportAccountResponse(document=document)

    @rpc
    async def RegisterDevice(
        self, request: notifications_pb2.RegisterDeviceRequest, context: Context
    ) -> notifications_pb2.RegisterDeviceResponse:
        await devices.register_device(
            engine=self._engine,
            principal=await acting_principal(context),
            token=request.token,
            platform=request.platform,
        )
        return notifications_pb2.RegisterDeviceResponse()

    @rpc
    async def UnregisterDevice(
        self, request: notifications_pb2.UnregisterDeviceRequest, context: Context
    ) -> notifications_pb2.UnregisterDeviceResponse:
        await devices.unregister_device(
            engine=self._engine, principal=await acting_principal(context), token=request.token
        )
        return notifications_pb2.UnregisterDeviceResponse()

    @rpc
    async def GetNotificationPreferences(
        self, request: notifications_pb2.GetNotificationPreferencesRequest, context: Context
    ) -> notifications_pb2.GetNotificationPreferencesResponse:
        enabled = await devices.preferences(
            engine=self._engine, principal=await acting_principal(context)
        )
        return notifications_pb2.GetNotificationPreferencesResponse(
            preferences=notification_messages.preferences(enabled)
        )

    @rpc
    async def UpdateNotificationPreferences(
        self, request: notifications_pb2.UpdateNotificationPreferencesRequest, context: Context
    ) -> notifications_pb2.UpdateNotificationPreferencesResponse:
        enabled = await devices.update_preferences(
            engine=self._engine,
            principal=await acting_principal(context),
            enabled=notification_messages.wanted(request.preferences),
        )
        return notifications_pb2.UpdateNotificationPreferencesResponse(
            preferences=notification_messages.preferences(enabled)
        )

    @stream_rpc
    async def WatchBilling(
        self, request: billing_pb2.WatchBillingRequest, context: Context
    ) -> AsyncIterator[billing_pb2.WatchBillingResponse]:
        principal = await acting_principal(context)
        if self._watchers.closed:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "billing is shutting down")
        since = request.since_version if request.HasField("since_version") else None
        async for change in self._watchers.watch(principal, since):
            yield messages.watch_response(change)

    async def _apply(self, request: billing_pb2.ApplyStripeEventRequest) -> Outcome:
        if request.provider == clerk_events.PROVIDER:
            return await self._apply_clerk(request)
        return await events.apply_event(
            engine=self._engine,
            stripe_client=self._stripe,
            event_id=request.event_id,
            event_type=request.type,
            payload=request.payload,
        )

    @rpc
    async def ApplyStripeEvent(
        self, request: billing_pb2.ApplyStripeEventRequest, context: Context
    ) -> billing_pb2.ApplyStripeEventResponse:
        return billing_pb2.ApplyStripeEventResponse(
            outcome=messages.OUTCOMES[await self._apply(request)]
        )

    @rpc
    async def ApplyStripeEvents(
        self, request: billing_pb2.ApplyStripeEventsRequest, context: Context
    ) -> billing_pb2.ApplyStripeEventsResponse:
        # The events get the call's time less a margin for the answer: one slow event (a
        # Stripe fetch) is then UNAVAILABLE on its own instead of timing out the whole batch.
        # grpc-stubs says float; grpcio answers None for a call without a deadline.
        remaining: float | None = context.time_remaining()
        limit = None if remaining is None else max(0.0, remaining - _ANSWER_MARGIN_SECONDS)
        # Clerk's events (rare) are applied each on its own, beside Stripe's batch.
        clerk = [e for e in request.events if e.provider == clerk_events.PROVIDER]
        stripe_events = [e for e in request.events if e.provider != clerk_events.PROVIDER]
        batch, alone = await asyncio.gather(
            event_batch.apply_events(
                engine=self._engine,
                stripe_client=self._stripe,
                deliveries=[
                    event_batch.Delivery(event.event_id, event.type, event.payload)
                    for event in stripe_events
                ],
                limit=limit,
            ),
            asyncio.gather(
                *(asyncio.wait_for(self._apply_clerk(event), limit) for event in clerk),
                return_exceptions=True,
            ),
        )
        # Each event's own result, in the request's order (an id may repeat).
        stripe_results, clerk_results = iter(batch), iter(alone)
        results: list[event_batch.Result] = []
        for event in request.events:
            if event.provider == clerk_events.PROVIDER:
                result = next(clerk_results)
                results.append(result if isinstance(result, Outcome | Exception) else Exception())
            else:
                results.append(next(stripe_results))
        return billing_pb2.ApplyStripeEventsResponse(
            results=[
                _event_result(event.event_id, result)
                for event, result in zip(request.events, results, strict=True)
            ]
        )

    async def _apply_clerk(self, request: billing_pb2.ApplyStripeEventRequest) -> Outcome:
        return await clerk_events.apply_clerk_event(
            engine=self._engine,
            stripe_client=self._stripe,
            inbox=self._inbox,
            event_id=request.event_id,
            event_type=request.type,
            payload=request.payload,
        )


def _event_result(event_id: str, result: event_batch.Result) -> billing_pb2.ApplyStripeEventResult:
    """One event of a batch: its outcome, or the status it failed with."""
    if isinstance(result, Outcome):
        return billing_pb2.ApplyStripeEventResult(
            event_id=event_id, outcome=messages.OUTCOMES[result]
        )
    if isinstance(result, TimeoutError):
        failure = Failure(
            grpc.StatusCode.UNAVAILABLE,
            ErrorReason.APPLY_TIMED_OUT,
            "applying the event took longer than the call allows; try again",
        )
    else:  # one event's failure is its own result
        failure = failure_of(result, "ApplyStripeEvents")
    error = billing_pb2.EventError(
        code=failure.code.value[0], message=failure.message, reason=failure.reason
    )
    return billing_pb2.ApplyStripeEventResult(event_id=event_id, error=error)


async def start_billing_server(
    *,
    address: str,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    service_secrets: Mapping[str, str],
    rules: BillingRules = BillingRules(),  # noqa: B008 - immutable
    readiness_interval: float = READINESS_INTERVAL_SECONDS,
    credentials: grpc.ServerCredentials | None = None,
    health_address: str | None = None,
    inbox: InboxClient | None = None,
) -> GrpcServer:
    """Start billing's gRPC server (BillingService and BillingAdminService) on `address` (port 0
    picks one) with caller checks on; its health is SERVING while its database answers. With
    `credentials` it serves TLS, and plaintext health on `health_address`."""
    verifier = ServiceTokenVerifier(secrets=service_secrets, audience="billing")
    watchers = Watchers(engine=engine, grace=timedelta(days=rules.past_due_grace_days))
    feed = ChangeFeed(psycopg_conninfo(engine), watchers)
    await feed.start()
    servicer = BillingServicer(
        engine=engine, stripe_client=stripe_client, rules=rules, watchers=watchers, inbox=inbox
    )
    admin = BillingAdminServicer(engine=engine, stripe_client=stripe_client)
    policy = method_policy(rules.entitlement_callers)

    def add_servicers(server: grpc.aio.Server) -> None:
        billing_pb2_grpc.add_BillingServiceServicer_to_server(servicer, server)
        billing_pb2_grpc.add_BillingAdminServiceServicer_to_server(admin, server)

    server = await start_grpc_server(
        address=address,
        service_names=[SERVICE_NAME, ADMIN_SERVICE_NAME],
        add_servicers=add_servicers,
        interceptors=[ServiceAuthInterceptor(verifier, policy), RefuseNulInterceptor()],
        readiness=functools.partial(database_reachable, engine),
        readiness_interval=readiness_interval,
        credentials=credentials,
        health_address=health_address,
    )
    server.closers.append(feed.close)
    return server
