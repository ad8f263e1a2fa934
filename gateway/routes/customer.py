"""The caller's Stripe customer: GET (404 before creation) and POST (create-or-get)."""

from datetime import UTC

from fastapi import APIRouter, Response
from tatame.billing.v1 import billing_pb2

from gateway.dependencies import Billing, CurrentSession
from gateway.schemas import CustomerIn, CustomerOut, ErrorOut

router = APIRouter(tags=["customer"])

ERRORS = {401: {"model": ErrorOut}, 404: {"model": ErrorOut}, 503: {"model": ErrorOut}}


def render(customer: billing_pb2.Customer) -> CustomerOut:
    return CustomerOut(
        stripe_customer_id=customer.stripe_customer_id,
        email=customer.email,
        name=customer.name,
        created_at=customer.create_time.ToDatetime(tzinfo=UTC),
    )


@router.get(
    "/v1/customer", response_model=CustomerOut, responses=ERRORS, summary="The caller's customer"
)
async def get_customer(session: CurrentSession, billing: Billing) -> Response:
    reply = await billing.call(
        billing.stub.GetCustomer, billing_pb2.GetCustomerRequest(), principal=session.principal
    )
    return Response(render(reply.customer).model_dump_json(), media_type="application/json")


@router.post(
    "/v1/customer",
    response_model=CustomerOut,
    status_code=201,
    responses={**ERRORS, 200: {"model": CustomerOut, "description": "Already existed"}},
    summary="Create the caller's customer, or return it if it exists",
)
async def create_customer(body: CustomerIn, session: CurrentSession, billing: Billing) -> Response:
    reply = await billing.call(
        billing.stub.CreateCustomer,
        billing_pb2.CreateCustomerRequest(email=body.email, name=body.name),
        principal=session.principal,
    )
    return Response(
        render(reply.customer).model_dump_json(),
        status_code=201 if reply.created else 200,
        media_type="application/json",
    )
