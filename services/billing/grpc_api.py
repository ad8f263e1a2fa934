"""The gRPC edge of billing: the handlers and the server. Who may call each method is in
grpc_policy.py, messages are converted in grpc_messages.py, and failures become statuses in
services/common/rpc.py."""

import functools
import logging
from collections.abc import Mapping
from datetime import timedelta

import grpc
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.grpc_interceptor import ServiceAuthInterceptor, current_caller
from services.auth.service_credentials import ServiceTokenVerifier
from services.billing import (
    cancellations,
    change_previews,
    checkout,
    currencies,
    customers,
    entitlements,
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
from services.billing.grpc_account import AccountRpcs
from services.billing.grpc_admin import BillingAdminServicer
from services.billing.grpc_events import EventRpcs
from services.billing.grpc_pauses import PauseRpcs
from services.billing.grpc_policy import (
    ADMIN_SERVICE_NAME,
    SERVICE_NAME,
    acting_principal,
    method_policy,
)
from services.billing.grpc_policy import GATEWAY as GATEWAY  # re-exported for callers
from services.billing.grpc_policy import WEBHOOKS_RELAY as WEBHOOKS_RELAY
from services.billing.grpc_tax import TaxRpcs
from services.billing.grpc_usage import UsageRpcs
from services.billing.idempotency import RequestKey, idempotent
from services.billing.live.feed import ChangeFeed
from services.billing.live.watch import Watchers
from services.billing.privacy.inbox import InboxClient
from services.billing.resync.metrics import watch_drift
from services.billing.settings import BillingRules
from services.billing.usage import records as usage_records
from services.billing.usage.sender import UsageSending, start_sender
from services.common.db import database_reachable, psycopg_conninfo
from services.common.grpc_input import RefuseNulInterceptor
from services.common.grpc_server import (
    READINESS_INTERVAL_SECONDS,
    GrpcServer,
    start_grpc_server,
)
from services.common.rpc import Context, rpc

log = logging.getLogger(__name__)


class BillingServicer(AccountRpcs, EventRpcs, TaxRpcs, UsageRpcs, PauseRpcs):
    """tatame.billing.v1.BillingService over the use cases of billing (the account's methods in
    grpc_account.py, the relay's in grpc_events.py, tax in grpc_tax.py, usage in grpc_usage.py,
    pausing payments in grpc_pauses.py)."""

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
        plans, currency = await currencies.plans_in_currency(
            engine=self._engine,
            include_one_time=request.include_one_time,
            requested=request.currency,
            principal=current_caller().principal,  # None when the plans are asked publicly
        )
        return billing_pb2.ListPlansResponse(
            plans=[messages.plan_message(p) for p in plans], currency=currency or ""
        )

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
            currency=request.currency,
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
            payment_status=confirmed.payment_status,
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
            currency=request.currency,
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
            currency=request.currency,
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
            rules=self._rules,
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
            rules=self._rules,
            principal=await acting_principal(context),
            price=request.price,
            quantity=request.quantity,
            currency=request.currency,
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
        principal = await acting_principal(context)
        record = await entitlements.check_entitlement(
            engine=self._engine,
            principal=principal,
            feature=request.feature,
            grace=self._grace,
            dispute_policy=self._rules.dispute_policy,
        )
        if record is None:
            return billing_pb2.CheckEntitlementResponse(entitled=False)
        response = billing_pb2.CheckEntitlementResponse(
            entitled=True, entitlement=messages.entitlement_message(record)
        )
        if record.limit is not None:
            left = await usage_records.balance(
                engine=self._engine, principal=principal, feature=record.feature, limit=record.limit
            )
            response.limit, response.remaining = left.limit, left.remaining
        return response

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
    usage_sending: UsageSending | None = None,
) -> GrpcServer:
    """Start billing's gRPC server (BillingService and BillingAdminService) on `address` (port 0
    picks one) with caller checks on; its health is SERVING while its database answers. With
    `credentials` it serves TLS, and plaintext health on `health_address`. With
    `usage_sending`, a usage sender runs beside it until it stops."""
    verifier = ServiceTokenVerifier(secrets=service_secrets, audience="billing")
    watchers = Watchers(engine=engine, grace=timedelta(days=rules.past_due_grace_days))
    feed = ChangeFeed(psycopg_conninfo(engine), watchers)
    await feed.start()
    servicer = BillingServicer(
        engine=engine, stripe_client=stripe_client, rules=rules, watchers=watchers, inbox=inbox
    )
    admin = BillingAdminServicer(engine=engine, stripe_client=stripe_client)
    policy = method_policy(rules.entitlement_callers, rules.usage_callers)

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
    server.closers.append(watch_drift(engine))
    if usage_sending is not None:
        sender = await start_sender(
            engine=engine, stripe_client=stripe_client, config=usage_sending
        )
        server.closers.append(sender.stop)
    return server
