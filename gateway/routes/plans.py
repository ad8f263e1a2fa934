"""GET /v1/plans: the public catalog, in a currency, cached briefly in each gateway process."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.billing_client import BillingCalls
from gateway.caches import RenderedPlans, rendered_plans
from gateway.dependencies import SESSION_COOKIE, Billing, Plans, current_session
from gateway.schemas import PlansOut
from services.auth.errors import AuthError
from services.auth.principal import Principal

router = APIRouter(tags=["catalog"])

CurrencyQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=16,
        pattern=r"^[^\x00-\x1f\x7f-\x9f]*$",
        description="ISO 4217 code (e.g. `brl`): each price in that currency, prices without "
        "it left out (and plans left without prices). Default: the caller's customer currency "
        "when a valid session token is sent and the customer has one, else each price in its "
        "own. 400 `invalid_currency` (not a currency code), `currency_not_offered` (nothing is "
        "sold in it).",
    ),
]


def render(reply: billing_pb2.ListPlansResponse) -> PlansOut:
    return PlansOut(plans=[rendering.plan(p) for p in reply.plans], currency=reply.currency or None)


async def caller_principal(request: Request) -> Principal | None:
    """The caller's principal when the request carries a valid session token. The plans are
    public: without a token, or with one that does not verify (expired, say), the caller is
    anyone and only misses its customer's currency."""
    if "authorization" not in request.headers and SESSION_COOKIE not in request.cookies:
        return None
    try:
        return (await current_session(request)).principal
    except AuthError:
        return None


async def fetched(billing: BillingCalls, currency: str) -> bytes:
    reply = await billing.list_plans(billing_pb2.ListPlansRequest(currency=currency))
    return render(reply).model_dump_json().encode()


@router.get("/v1/plans", response_model=PlansOut, summary="Plans for sale (public)")
async def list_plans(
    request: Request, billing: Billing, cache: Plans, currency: CurrencyQuery = None
) -> Response:
    principal = None if currency else await caller_principal(request)
    plans: RenderedPlans
    if principal is None:  # the same for everyone: cached per currency
        wanted = (currency or "").lower()
        plans = await cache.get(lambda: fetched(billing.acting_for(None), wanted), wanted)
        cache_control = f"public, max-age={int(cache.ttl)}"
    else:  # in the caller's customer's currency, once it has one
        plans = rendered_plans(await fetched(billing.acting_for(principal), ""), 0.0)
        cache_control = "private, no-cache"
    headers = {"ETag": plans.etag, "Cache-Control": cache_control, "Vary": "Authorization, Cookie"}
    if request.headers.get("if-none-match") == plans.etag:
        return Response(status_code=304, headers=headers)
    return Response(plans.body, media_type="application/json", headers=headers)
