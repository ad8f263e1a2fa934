"""What the caller's subscription lets it use."""

from fastapi import APIRouter, Response
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.dependencies import ForCaller
from gateway.schemas import EntitlementsOut, error_responses

router = APIRouter(tags=["entitlements"])


@router.get(
    "/v1/entitlements",
    response_model=EntitlementsOut,
    responses=error_responses(401, 503),
    summary="Features the caller's subscription grants (active, trialing once its card is "
    "saved, past_due in grace)",
)
async def list_entitlements(billing: ForCaller) -> Response:
    reply = await billing.list_entitlements(billing_pb2.ListEntitlementsRequest())
    return rendering.json_response(
        EntitlementsOut(entitlements=[rendering.entitlement(e) for e in reply.entitlements])
    )
