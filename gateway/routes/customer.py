"""The caller's Stripe customer: GET (404 before creation) and POST (create-or-get)."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

import cachetools
from fastapi import APIRouter, Depends, Request, Response
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.dependencies import Billing, CurrentSession, IdempotencyKey
from gateway.schemas import CustomerIn, CustomerOut, ErrorOut

router = APIRouter(tags=["customer"])

ERRORS = {401: {"model": ErrorOut}, 404: {"model": ErrorOut}, 503: {"model": ErrorOut}}


class RenderedCustomers:
    """Rendered customers by principal for `ttl` seconds. Concurrent misses for one principal
    share one billing call: when an entry expires under load, the requests in flight for it
    would otherwise all call billing at once."""

    def __init__(self, ttl: float) -> None:
        self._rendered: cachetools.TTLCache[str, bytes] = cachetools.TTLCache(
            maxsize=50_000, ttl=ttl
        )
        self._fetching: dict[str, asyncio.Future[bytes]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[bytes]]) -> bytes:
        body = self._rendered.get(key)
        if body is not None:
            return body
        pending = self._fetching.get(key)
        if pending is None:
            pending = asyncio.ensure_future(fetch())
            self._fetching[key] = pending
            pending.add_done_callback(lambda _: self._fetching.pop(key, None))
        # Shielded: a caller that goes away does not cancel the others' answer.
        body = await asyncio.shield(pending)
        self._rendered[key] = body
        return body

    def put(self, key: str, body: bytes) -> None:
        self._rendered[key] = body


async def customer_cache(request: Request) -> RenderedCustomers | None:
    """The cache of `GATEWAY_CUSTOMER_CACHE_SECONDS` (None: off)."""
    return request.app.state.customer_cache


CustomerCache = Annotated[RenderedCustomers | None, Depends(customer_cache)]


@router.get(
    "/v1/customer", response_model=CustomerOut, responses=ERRORS, summary="The caller's customer"
)
async def get_customer(session: CurrentSession, billing: Billing, cache: CustomerCache) -> Response:
    async def fetch() -> bytes:
        reply = await billing.call(
            billing.stub.GetCustomer, billing_pb2.GetCustomerRequest(), principal=session.principal
        )
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
    billing: Billing,
    cache: CustomerCache,
    key: IdempotencyKey,
) -> Response:
    reply = await billing.call(
        billing.stub.CreateCustomer,
        billing_pb2.CreateCustomerRequest(email=body.email, name=body.name),
        principal=session.principal,
        idempotency_key=key,
    )
    rendered = rendering.customer(reply.customer).model_dump_json().encode()
    if cache is not None:
        cache.put(session.principal.key, rendered)
    return Response(
        rendered, status_code=201 if reply.created else 200, media_type="application/json"
    )
