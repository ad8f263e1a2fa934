"""The gRPC edge of billing: request/response translation, caller policy and the status table."""

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TypeVar

import grpc
import stripe
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.grpc_interceptor import ServiceAuthInterceptor, current_caller
from services.auth.principal import Principal
from services.auth.service_credentials import ServiceTokenVerifier
from services.billing import catalog, customers, events, subscriptions
from services.billing.errors import (
    BillingError,
    DatabaseUnavailable,
    InvalidArgument,
    NotFound,
    StripeRejected,
    StripeUnavailable,
)
from services.billing.mirror import Outcome
from services.common.grpc_server import GrpcServer, start_grpc_server

log = logging.getLogger(__name__)

SERVICE_NAME = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name
GATEWAY = "gateway"
WEBHOOKS_RELAY = "webhooks-relay"

# Which internal services may call each method; anything not listed is refused.
METHOD_POLICY: Mapping[str, frozenset[str]] = {
    f"/{SERVICE_NAME}/ListPlans": frozenset({GATEWAY}),
    f"/{SERVICE_NAME}/GetCustomer": frozenset({GATEWAY}),
    f"/{SERVICE_NAME}/CreateCustomer": frozenset({GATEWAY}),
    f"/{SERVICE_NAME}/ListSubscriptions": frozenset({GATEWAY}),
    f"/{SERVICE_NAME}/ApplyStripeEvent": frozenset({WEBHOOKS_RELAY}),
}

# Domain error → gRPC status: the only place billing chooses status codes.
STATUS_OF: Mapping[type[BillingError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    StripeUnavailable: grpc.StatusCode.UNAVAILABLE,
    StripeRejected: grpc.StatusCode.FAILED_PRECONDITION,
    DatabaseUnavailable: grpc.StatusCode.UNAVAILABLE,
}

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


def rpc(method: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Run a servicer method, turning domain errors into their status and hiding anything else."""

    @functools.wraps(method)
    async def wrapper(
        self: "BillingServicer", request: Req, context: grpc.aio.ServicerContext
    ) -> Resp:
        try:
            return await method(self, request, context)
        except BillingError as e:
            await context.abort(STATUS_OF[type(e)], str(e))
        except Exception:
            log.exception("unhandled error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
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
    )


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    """tatame.billing.v1.BillingService over the use cases of billing."""

    def __init__(self, *, engine: AsyncEngine, stripe_client: stripe.StripeClient) -> None:
        self._engine = engine
        self._stripe = stripe_client

    @rpc
    async def ListPlans(self, request, context):
        plans = await catalog.list_plans(engine=self._engine)
        return billing_pb2.ListPlansResponse(
            plans=[
                billing_pb2.Plan(
                    product_id=p.product_id,
                    name=p.name,
                    description=p.description,
                    features=p.features,
                    prices=[
                        billing_pb2.Price(
                            id=x.id,
                            lookup_key=x.lookup_key or "",
                            unit_amount=x.unit_amount,
                            currency=x.currency,
                            interval=_INTERVALS.get(x.interval, billing_pb2.INTERVAL_UNSPECIFIED),
                            interval_count=x.interval_count,
                        )
                        for x in p.prices
                    ],
                )
                for p in plans
            ]
        )

    @rpc
    async def GetCustomer(self, request, context):
        principal = await acting_principal(context)
        record = await customers.get_customer(engine=self._engine, principal=principal)
        return billing_pb2.GetCustomerResponse(customer=customer_message(record))

    @rpc
    async def CreateCustomer(self, request, context):
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
    async def ApplyStripeEvent(self, request, context):
        outcome = await events.apply_event(
            engine=self._engine,
            stripe_client=self._stripe,
            event_id=request.event_id,
            event_type=request.type,
            payload=request.payload,
        )
        return billing_pb2.ApplyStripeEventResponse(outcome=_OUTCOMES[outcome])


async def start_billing_server(
    *,
    address: str,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
    service_secrets: Mapping[str, str],
) -> GrpcServer:
    """Start billing's gRPC server on `address` (port 0 picks one) with caller checks on."""
    verifier = ServiceTokenVerifier(secrets=service_secrets, audience="billing")
    servicer = BillingServicer(engine=engine, stripe_client=stripe_client)
    return await start_grpc_server(
        address=address,
        service_names=[SERVICE_NAME],
        add_servicers=lambda server: billing_pb2_grpc.add_BillingServiceServicer_to_server(
            servicer, server
        ),
        interceptors=[ServiceAuthInterceptor(verifier, METHOD_POLICY)],
    )
