"""GET /v1/billing: everything the app's billing screen draws, in one call."""

from fastapi import APIRouter, Response
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.dependencies import ForCaller
from gateway.schemas import BillingOverviewOut, error_responses

router = APIRouter(tags=["billing"])


@router.get(
    "/v1/billing",
    response_model=BillingOverviewOut,
    responses=error_responses(401, 503),
    summary="The caller's billing screen: subscription and plan, entitlements, the invoice "
    "that needs paying or authenticating, the default card (from billing's mirror)",
)
async def billing_overview(billing: ForCaller) -> Response:
    reply = await billing.get_billing_overview(billing_pb2.GetBillingOverviewRequest())
    return rendering.json_response(rendering.overview(reply))
