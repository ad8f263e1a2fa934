"""The caller's Stripe customer: GET (404 before creation) and POST (create-or-get)."""

from typing import Annotated

import cachetools
from fastapi import APIRouter, Depends, Request, Response
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.dependencies import Billing, CurrentSession
from gateway.schemas import CustomerIn, CustomerOut, ErrorOut

router = APIRouter(tags=["customer"])

ERRORS = {401: {"model": ErrorOut}, 404: {"model": ErrorOut}, 503: {"model": ErrorOut}}


async def customer_cache(request: Request) -> cachetools.TTLCache[str, bytes] | None:
    """Rendered customers by principal, for `GATEWAY_CUSTOMER_CACHE_SECONDS` (None: off)."""
    return request.app.state.customer_cache


CustomerCache = Annotated[cachetools.TTLCache[str, bytes] | None, Depends(customer_cache)]


@router.get(
    "/v1/customer", response_model=CustomerOut, responses=ERRORS, summary="The caller's customer"
)
async def get_customer(session: CurrentSession, billing: Billing, cache: CustomerCache) -> Response:
    key = session.principal.key
    body = cache.get(key) if cache is not None else None
    if body is None:
        reply = await billing.call(
            billing.stub.GetCustomer, billing_pb2.GetCustomerRequest(), principal=session.principal
        )
        body = rendering.customer(reply.customer).model_dump_json().encode()
        if cache is not None:
            cache[key] = body
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
    body: CustomerIn, session: CurrentSession, billing: Billing, cache: CustomerCache
) -> Response:
    reply = await billing.call(
        billing.stub.CreateCustomer,
        billing_pb2.CreateCustomerRequest(email=body.email, name=body.name),
        principal=session.principal,
    )
    rendered = rendering.customer(reply.customer).model_dump_json().encode()
    if cache is not None:
        cache[session.principal.key] = rendered
    return Response(
        rendered, status_code=201 if reply.created else 200, media_type="application/json"
    )
