"""GET /v1/plans: the public catalog, cached briefly in each gateway process."""

from fastapi import APIRouter, Request, Response
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.dependencies import Plans, PublicBilling
from gateway.schemas import PlansOut

router = APIRouter(tags=["catalog"])


def render(reply: billing_pb2.ListPlansResponse) -> PlansOut:
    return PlansOut(plans=[rendering.plan(p) for p in reply.plans])


@router.get("/v1/plans", response_model=PlansOut, summary="Plans for sale (public)")
async def list_plans(request: Request, billing: PublicBilling, cache: Plans) -> Response:
    async def fetch() -> bytes:
        reply = await billing.list_plans(billing_pb2.ListPlansRequest())
        return render(reply).model_dump_json().encode()

    plans = await cache.get(fetch)
    headers = {"ETag": plans.etag, "Cache-Control": f"public, max-age={int(cache.ttl)}"}
    if request.headers.get("if-none-match") == plans.etag:
        return Response(status_code=304, headers=headers)
    return Response(plans.body, media_type="application/json", headers=headers)
