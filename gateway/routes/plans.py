"""GET /v1/plans: the public catalog, cached briefly in each gateway process."""

import asyncio
import hashlib
import time
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from tatame.billing.v1 import billing_pb2

from gateway.billing_client import BillingClient
from gateway.dependencies import Billing
from gateway.schemas import PlanOut, PlansOut, PriceOut

router = APIRouter(tags=["catalog"])

INTERVAL_NAMES = {
    billing_pb2.INTERVAL_DAY: "day",
    billing_pb2.INTERVAL_WEEK: "week",
    billing_pb2.INTERVAL_MONTH: "month",
    billing_pb2.INTERVAL_YEAR: "year",
}


@dataclass(frozen=True, slots=True)
class RenderedPlans:
    body: bytes
    etag: str
    expires_at: float


class PlansCache:
    """The rendered plans response, refreshed from billing at most once per `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._current: RenderedPlans | None = None
        self._lock = asyncio.Lock()

    async def get(self, billing: BillingClient) -> RenderedPlans:
        current = self._current
        if current is not None and current.expires_at > time.monotonic():
            return current
        async with self._lock:  # one refresh at a time; the others reuse its result
            current = self._current
            if current is None or current.expires_at <= time.monotonic():
                reply = await billing.call(
                    billing.stub.ListPlans, billing_pb2.ListPlansRequest(), principal=None
                )
                body = render(reply).model_dump_json().encode()
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                current = RenderedPlans(body, etag, time.monotonic() + self.ttl)
                self._current = current
            return current


def render(reply: billing_pb2.ListPlansResponse) -> PlansOut:
    return PlansOut(
        plans=[
            PlanOut(
                id=p.product_id,
                name=p.name,
                description=p.description,
                features=list(p.features),
                prices=[
                    PriceOut(
                        id=x.id,
                        lookup_key=x.lookup_key or None,
                        unit_amount=x.unit_amount,
                        currency=x.currency,
                        interval=INTERVAL_NAMES.get(x.interval, "unknown"),
                        interval_count=x.interval_count,
                    )
                    for x in p.prices
                ],
            )
            for p in reply.plans
        ]
    )


@router.get("/v1/plans", response_model=PlansOut, summary="Plans for sale (public)")
async def list_plans(request: Request, billing: Billing) -> Response:
    cache: PlansCache = request.app.state.plans_cache
    plans = await cache.get(billing)
    headers = {"ETag": plans.etag, "Cache-Control": f"public, max-age={int(cache.ttl)}"}
    if request.headers.get("if-none-match") == plans.etag:
        return Response(status_code=304, headers=headers)
    return Response(plans.body, media_type="application/json", headers=headers)
