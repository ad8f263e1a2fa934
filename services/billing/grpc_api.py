"""The gRPC edge of billing: request/response translation, caller policy and the status table."""

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

import grpc
import stripe
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.grpc_interceptor import ServiceAuthInterceptor, current_caller
from services.auth.principal import Principal
from services.auth.service_credentials import ServiceTokenVerifier
from services.billing import (
    catalog,
    checkout,
    customers,
    entitlements,
    events,
    invoices,
    payment_methods,
    payments,
    subscribe,
    subscription_changes,
    subscriptions,
)
from services.billing.errors import (
    BillingError,
    Conflict,
    DatabaseUnavailable,
    IdempotencyKeyReused,
    InvalidArgument,
    LiveSubscriptionExists,
    NotFound,
    RequestInProgress,
    StripeRejected,
    StripeUnavailable,
)
from services.billing.idempotency import idempotent
from services.billing.mirror import Outcome
from services.billing.settings import BillingRules
from services.common.grpc_server import GrpcServer, start_grpc_server

log = logging.getLogger(__name__)

SERVICE_NAME = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name
GATEWAY = "gateway"
WEBHOOKS_RELAY = "webhooks-relay"

# Methods only the gateway calls, for the principal its verified session token names.
_GATEWAY_METHODS = (
    "ListPlans",
    "GetCustomer",
    "CreateCustomer",
    "ListSubscriptions",
    "CreateCheckoutSession",
    "ConfirmCheckoutSession",
    "CreatePortalSession",
    "CreateSubscription",
    "CreateSetupIntent",
    "CreateEphemeralKey",
    "CreatePayment",
    "GetSubscription",
    "PreviewSubscriptionChange",
    "UpdateSubscription",
    "CancelSubscription",
    "ResumeSubscription",
    "ListInvoices",
    "ListPaymentMethods",
    "SetDefaultPaymentMethod",
    "DetachPaymentMethod",
)
# Methods other internal services may call too (BILLING_ENTITLEMENT_CALLERS).
_ENTITLEMENT_METHODS = ("ListEntitlements", "CheckEntitlement")


def method_policy(entitlement_callers: frozenset[str]) -> Mapping[str, frozenset[str]]:
    """Which internal services may call each method; anything not listed is refused."""
    policy = {f"/{SERVICE_NAME}/{name}": frozenset({GATEWAY}) for name in _GATEWAY_METHODS}
    for name in ("ApplyStripeEvent", "ApplyStripeEvents"):
        policy[f"/{SERVICE_NAME}/{name}"] = frozenset({WEBHOOKS_RELAY})
    for name in _ENTITLEMENT_METHODS:
        policy[f"/{SERVICE_NAME}/{name}"] = frozenset({GATEWAY}) | entitlement_callers
    return policy


# Domain error → gRPC status: the only place billing chooses status codes.
STATUS_OF: Mapping[type[BillingError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    LiveSubscriptionExists: grpc.StatusCode.ALREADY_EXISTS,
    IdempotencyKeyReused: grpc.StatusCode.ALREADY_EXISTS,
    RequestInProgress: grpc.StatusCode.ABORTED,
    StripeUnavailable: grpc.StatusCode.UNAVAILABLE,
    StripeRejected: grpc.StatusCode.FAILED_PRECONDITION,
    DatabaseUnavailable: grpc.StatusCode.UNAVAILABLE,
}

_PRORATION_BEHAVIORS: Mapping[int, str] = {
    billing_pb2.PRORATION_BEHAVIOR_CREATE_PRORATIONS: "create_prorations",
    billing_pb2.PRORATION_BEHAVIOR_ALWAYS_INVOICE: "always_invoice",
    billing_pb2.PRORATION_BEHAVIOR_NONE: "none",
}

# Of an ApplyStripeEvents call's deadline, the time kept back to answer for every event.
_ANSWER_MARGIN_SECONDS = 0.5

_OUTCOMES: Mapping[Outcome, int] = {
    Outcome.APPLIED: billing_pb2.ApplyStripeEventResponse.OUTCOME_APPLIED,
    Outcome.DUPLICATE: billing_pb2.ApplyStripeEventResponse.OUTCOME_DUPLICATE,
    Outcome.STALE: billing_pb2.ApplyStripeEventResponse.OUTCOME_STALE,
    Outcome.IGNORED: billing_pb2.ApplyStripeEventResponse.OUTCOME_IGNORED,
}

_INTERVALS = {
    "day": billing_pb2.INTERVAL_DAY,
    "week": billing_pb2.INTERVAL_WEEK,
    "month": billing_pb2.INTERVAL_MONTH,
    "year": billing_pb2.INTERVAL_YEAR,
}

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[["BillingServicer", Req, grpc.aio.ServicerContext], Awaitable[Resp]]


def failure_status(error: Exception, where: str) -> tuple[grpc.StatusCode, str]:
    """The status a failure is answered with: a domain error's own, else INTERNAL (logged, and
    never described to the caller)."""
    if isinstance(error, BillingError):
        return STATUS_OF[type(error)], str(error)
    log.error("unhandled error in %s", where, exc_info=error)
    return grpc.StatusCode.INTERNAL, "internal error"


def rpc(method: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Run a servicer method, turning domain errors into their status and hiding anything else."""

    @functools.wraps(method)
    async def wrapper(
        self: "BillingServicer", request: Req, context: grpc.aio.ServicerContext
    ) -> Resp:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise  # the method chose its status itself
        except Exception as e:  # every other failure becomes a status
            await context.abort(*failure_status(e, method.__name__))
        raise AssertionError("unreachable: abort raises")

    return wrapper


async def acting_principal(context: grpc.aio.ServicerContext) -> Principal:
    """The principal the calling service acts for; methods about one principal require it."""
    principal = current_caller().principal
    if principal is None:
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "this method acts for a principal; the credential names none",
        )
    return principal


def timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None (the field stays unset) for no time."""
    if value is None:
        return None
    converted = Timestamp()
    converted.FromDatetime(value)
    return converted


def customer_message(record: customers.CustomerRecord) -> billing_pb2.Customer:
    return billing_pb2.Customer(
        principal=record.principal,
        stripe_customer_id=record.stripe_customer_id,
        email=record.email,
        name=record.name,
        create_time=timestamp(record.created_at),
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
    )


def price_message(record: catalog.PriceRecord) -> billing_pb2.Price:
    return billing_pb2.Price(
        id=record.id,
        lookup_key=record.lookup_key or "",
        unit_amount=record.unit_amount,
        currency=record.currency,
        interval=_INTERVALS.get(record.interval or "", billing_pb2.INTERVAL_UNSPECIFIED),
        interval_count=record.interval_count or 0,
        type=record.type,
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
        subscription_id=record.subscription_id,
        subscription_status=record.subscription_status,
        grace_end_time=timestamp(record.grace_end),
    )


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    """tatame.billing.v1.BillingService over the use cases of billing."""

    def __init__(
        self, *, engine: AsyncEngine, stripe_client: stripe.StripeClient, rules: BillingRules
    ) -> None:
        self._engine = engine
        self._stripe = stripe_client
        self._rules = rules
        self._grace = timedelta(days=rules.past_due_grace_days)

    @rpc
    async def ListPlans(self, request, context):
        plans = await catalog.list_plans(
            engine=self._engine, include_one_time=request.include_one_time
        )
        return billing_pb2.ListPlansResponse(plans=[plan_message(p) for p in plans])

    @rpc
    async def GetCustomer(self, request, context):
        principal = await acting_principal(context)
        record = await customers.get_customer(engine=self._engine, principal=principal)
        return billing_pb2.GetCustomerResponse(customer=customer_message(record))

    @rpc
    @idempotent(billing_pb2.CreateCustomerResponse)
    async def CreateCustomer(self, request, context, idempotency):
        # Stripe's key comes from the contact details (customers.idempotency_key): any retry,
        # with or without the client's key, must reach the same one.
        principal = await acting_principal(context)
        record, created = await customers.create_or_get_customer(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=principal,
            email=request.email,
            name=request.name,
        )
        return billing_pb2.CreateCustomerResponse(
            customer=customer_message(record), created=created
        )

    @rpc
    async def ListSubscriptions(self, request, context):
        principal = await acting_principal(context)
        records = await subscriptions.list_subscriptions(engine=self._engine, principal=principal)
        return billing_pb2.ListSubscriptionsResponse(
            subscriptions=[subscription_message(r) for r in records]
        )

    @rpc
    @idempotent(billing_pb2.CreateCheckoutSessionResponse)
    async def CreateCheckoutSession(self, request, context, idempotency):
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
    async def ConfirmCheckoutSession(self, request, context):
        confirmed = await checkout.confirm_checkout_session(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            session_id=request.session_id,
        )
        subscription = confirmed.subscription
        return billing_pb2.ConfirmCheckoutSessionResponse(
            status=confirmed.status,
            subscription=None if subscription is None else subscription_message(subscription),
        )

    @rpc
    @idempotent(billing_pb2.CreatePortalSessionResponse)
    async def CreatePortalSession(self, request, context, idempotency):
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
    async def CreateSubscription(self, request, context, idempotency):
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
            idempotency=idempotency,
        )
        return billing_pb2.CreateSubscriptionResponse(
            subscription=subscription_message(created.subscription),
            intent_type=created.intent_type,
            client_secret=created.client_secret,
            stripe_customer_id=created.stripe_customer_id,
            ephemeral_key_secret=created.ephemeral_key_secret,
            trial_applied=created.trial_applied,
        )

    @rpc
    @idempotent(billing_pb2.CreateSetupIntentResponse)
    async def CreateSetupIntent(self, request, context, idempotency):
        intent = await payment_methods.create_setup_intent(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            idempotency=idempotency,
        )
        return billing_pb2.CreateSetupIntentResponse(
            setup_intent_id=intent.id,
            client_secret=intent.client_secret,
            stripe_customer_id=intent.stripe_customer_id,
        )

    @rpc
    @idempotent(billing_pb2.CreateEphemeralKeyResponse)
    async def CreateEphemeralKey(self, request, context, idempotency):
        key = await payment_methods.create_ephemeral_key(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            stripe_version=request.stripe_version,
            idempotency=idempotency,
        )
        return billing_pb2.CreateEphemeralKeyResponse(
            secret=key.secret,
            stripe_customer_id=key.stripe_customer_id,
            expire_time=timestamp(key.expires),
        )

    @rpc
    @idempotent(billing_pb2.CreatePaymentResponse)
    async def CreatePayment(self, request, context, idempotency):
        payment = await payments.create_payment(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            price=request.price,
            quantity=request.quantity,
            idempotency=idempotency,
        )
        return billing_pb2.CreatePaymentResponse(
            payment_intent_id=payment.payment_intent_id,
            client_secret=payment.client_secret,
            amount=payment.amount,
            currency=payment.currency,
            stripe_customer_id=payment.stripe_customer_id,
        )

    @rpc
    async def GetSubscription(self, request, context):
        record = await subscriptions.get_subscription(
            engine=self._engine,
            principal=await acting_principal(context),
            subscription_id=request.id,
        )
        return billing_pb2.GetSubscriptionResponse(subscription=subscription_message(record))

    @rpc
    async def PreviewSubscriptionChange(self, request, context):
        preview = await subscription_changes.preview_change(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            subscription_id=request.id,
            price=request.price,
            quantity=request.quantity,
            proration_behavior=_PRORATION_BEHAVIORS.get(request.proration_behavior),
        )
        return billing_pb2.PreviewSubscriptionChangeResponse(
            amount_due=preview.amount_due,
            currency=preview.currency,
            lines=[
                billing_pb2.InvoiceLine(
                    description=line.description, amount=line.amount, proration=line.proration
                )
                for line in preview.lines
            ],
            takes_effect=preview.takes_effect,
        )

    @rpc
    @idempotent(billing_pb2.UpdateSubscriptionResponse)
    async def UpdateSubscription(self, request, context, idempotency):
        updated = await subscription_changes.update_subscription(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            subscription_id=request.id,
            price=request.price,
            quantity=request.quantity,
            proration_behavior=_PRORATION_BEHAVIORS.get(request.proration_behavior),
            idempotency=idempotency,
        )
        return billing_pb2.UpdateSubscriptionResponse(
            subscription=subscription_message(updated.subscription),
            takes_effect=updated.takes_effect,
            effective_time=timestamp(updated.effective_time),
        )

    @rpc
    async def CancelSubscription(self, request, context):
        record = await subscription_changes.cancel_subscription(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            subscription_id=request.id,
            immediately=request.immediately,
        )
        return billing_pb2.CancelSubscriptionResponse(subscription=subscription_message(record))

    @rpc
    async def ResumeSubscription(self, request, context):
        record = await subscription_changes.resume_subscription(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            subscription_id=request.id,
        )
        return billing_pb2.ResumeSubscriptionResponse(subscription=subscription_message(record))

    @rpc
    async def ListInvoices(self, request, context):
        records = await invoices.list_invoices(
            engine=self._engine, principal=await acting_principal(context)
        )
        return billing_pb2.ListInvoicesResponse(invoices=[invoice_message(r) for r in records])

    @rpc
    async def ListPaymentMethods(self, request, context):
        records = await payment_methods.list_payment_methods(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
        )
        return billing_pb2.ListPaymentMethodsResponse(
            payment_methods=[payment_method_message(r) for r in records]
        )

    @rpc
    async def SetDefaultPaymentMethod(self, request, context):
        record = await payment_methods.set_default_payment_method(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            payment_method_id=request.id,
        )
        return billing_pb2.SetDefaultPaymentMethodResponse(
            payment_method=payment_method_message(record)
        )

    @rpc
    async def DetachPaymentMethod(self, request, context):
        await payment_methods.detach_payment_method(
            engine=self._engine,
            stripe_client=self._stripe,
            principal=await acting_principal(context),
            payment_method_id=request.id,
        )
        return billing_pb2.DetachPaymentMethodResponse()

    @rpc
    async def ListEntitlements(self, request, context):
        records = await entitlements.list_entitlements(
            engine=self._engine, principal=await acting_principal(context), grace=self._grace
        )
        return billing_pb2.ListEntitlementsResponse(
            entitlements=[entitlement_message(r) for r in records]
        )

    @rpc
    async def CheckEntitlement(self, request, context):
        record = await entitlements.check_entitlement(
            engine=self._engine,
            principal=await acting_principal(context),
            feature=request.feature,
            grace=self._grace,
        )
        if record is None:
            return billing_pb2.CheckEntitlementResponse(entitled=False)
        return billing_pb2.CheckEntitlementResponse(
            entitled=True, entitlement=entitlement_message(record)
        )

    async def _apply(self, request: billing_pb2.ApplyStripeEventRequest) -> Outcome:
        return await events.apply_event(
            engine=self._engine,
            stripe_client=self._stripe,
            event_id=request.event_id,
            event_type=request.type,
            payload=request.payload,
        )

    @rpc
    async def ApplyStripeEvent(self, request, context):
        return billing_pb2.ApplyStripeEventResponse(outcome=_OUTCOMES[await self._apply(request)])

    @rpc
    async def ApplyStripeEvents(self, request, context):
        # Each event gets the call's time less a margin for the answer: one slow event (a
        # Stripe fetch) is then UNAVAILABLE on its own instead of timing out the whole batch.
        remaining = context.time_remaining()
        limit = None if remaining is None else max(0.0, remaining - _ANSWER_MARGIN_SECONDS)
        results = await asyncio.gather(*(self._apply_one(event, limit) for event in request.events))
        return billing_pb2.ApplyStripeEventsResponse(results=results)

    async def _apply_one(
        self, request: billing_pb2.ApplyStripeEventRequest, limit: float | None
    ) -> billing_pb2.ApplyStripeEventResult:
        """One event of a batch: its outcome, or the status it failed with."""
        try:
            outcome = await asyncio.wait_for(self._apply(request), timeout=limit)
        except TimeoutError:
            code = grpc.StatusCode.UNAVAILABLE
            message = "applying the event took longer than the call allows; try again"
        except Exception as e:  # one event's failure is its own result
            code, message = failure_status(e, "ApplyStripeEvents")
        else:
            return billing_pb2.ApplyStripeEventResult(
                event_id=request.event_id, outcome=_OUTCOMES[outcome]
            )
        return billing_pb2.ApplyStripeEventResult(
            event_id=request.event_id,
            error=billing_pb2.EventError(code=code.value[0], message=message),
        )


async def start_billing_server(
    *,
    address: str,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    service_secrets: Mapping[str, str],
    rules: BillingRules = BillingRules(),  # noqa: B008 - immutable
) -> GrpcServer:
    """Start billing's gRPC server on `address` (port 0 picks one) with caller checks on."""
    verifier = ServiceTokenVerifier(secrets=service_secrets, audience="billing")
    servicer = BillingServicer(engine=engine, stripe_client=stripe_client, rules=rules)
    policy = method_policy(rules.entitlement_callers)
    return await start_grpc_server(
        address=address,
        service_names=[SERVICE_NAME],
        add_servicers=lambda server: billing_pb2_grpc.add_BillingServiceServicer_to_server(
            servicer, server
        ),
        interceptors=[ServiceAuthInterceptor(verifier, policy)],
    )
