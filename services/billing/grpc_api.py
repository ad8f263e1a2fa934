"""The gRPC edge of billing: request/response translation, caller policy and the status table."""

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import grpc
import stripe
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.auth.grpc_interceptor import ServiceAuthInterceptor, current_caller
from services.auth.principal import Principal
from services.auth.service_credentials import ServiceTokenVerifier
from services.billing import catalog, customers
from services.billing.errors import (
    BillingError,
    InvalidArgument,
    NotFound,
    StripeRejected,
    StripeUnavailable,
)
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
}

# Domain error → gRPC status: the only place billing chooses status codes.
STATUS_OF: Mapping[type[BillingError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    StripeUnavailable: grpc.StatusCode.UNAVAILABLE,
    StripeRejected: grpc.StatusCode.FAILED_PRECONDITION,
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


def customer_message(record: customers.CustomerRecord) -> billing_pb2.Customer:
    created = Timestamp()
    created.FromDatetime(record.created_at)
    return billing_pb2.Customer(
        principal=record.principal,
        stripe_customer_id=record.stripe_customer_id,
        email=record.email,
        name=record.name,
        create_time=created,
    )


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    """tatame.billing.v1.BillingService over the catalog and customer use cases."""

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
