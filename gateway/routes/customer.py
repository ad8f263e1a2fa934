"""The caller's Stripe customer: GET (404 before creation) and POST (create-or-get)."""

from fastapi import APIRouter, Response
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.dependencies import (
    CurrentSession,
    CustomerCache,
    ForCaller,
    ForManager,
    IdempotencyKey,
)
from gateway.schemas import CustomerIn, CustomerOut, error_responses

router = APIRouter(tags=["customer"])

ERRORS = error_responses(400, 401, 404, 409, 503)


@router.get(
    "/v1/customer", response_model=CustomerOut, responses=ERRORS, summary="The caller's customer"
)
async def get_customer(
    session: CurrentSession, billing: ForCaller, cache: CustomerCache
) -> Response:
    async def fetch() -> bytes:
        reply = await billing.get_customer(billing_pb2.GetCustomerRequest())
        return rendering.customer(reply.customer).model_dump_json().encode()

    body = await (fetch() if cache is None else cache.get(session.principal.key, fetch))
    return Response(
        body, media_type="application/json", headers={"Cache-Control": "private, no-cache"}
    )


@router.post(
    "/v1/customer",
    response_model=CustomerOut,
    status_code=201,
    responses={**ERRORS, 200: {"model": CustomerOut, "description": "Already existed"}},
    summary="Create the caller's customer, or return it if it exists",
)
async def create_customer(
    body: CustomerIn,
    session: CurrentSession,
    billing: ForManager,
    cache: CustomerCache,
    key: IdempotencyKey,
) -> Response:
    reply = await billing.create_customer(
        billing_pb2.CreateCustomerRequest(email=body.email, name=body.name), idempotency_key=key
    )
    rendered = rendering.customer(reply.customer).model_dump_json().encode()
    if cache is not None:
        cache.put(session.principal.key, rendered)
    return Response(
        rendered, status_code=201 if reply.created else 200, media_type="application/json"
    )
