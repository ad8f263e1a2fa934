"""Pausing a subscription's payments (Stripe's pause_collection) and resuming them."""

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from tatame.billing.v1 import pause_pb2

from gateway import rendering
from gateway.dependencies import ForManager
from gateway.schemas import SubscriptionOut, error_responses
from gateway.validation import StripeId
from services.common.timestamps import timestamp

router = APIRouter(tags=["subscriptions"])
ERRORS = error_responses(400, 401, 404, 409, 503)


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    behavior: Literal["void", "keep_as_draft", "mark_uncollectible"] = Field(
        default="void",
        description="What happens to the invoices while paused: void (the default, and the only "
        "one offered unless BILLING_PAUSE_BEHAVIORS adds others: the service stops at the end "
        "of the period already paid), keep_as_draft or mark_uncollectible (access continues). "
        "A behavior not offered is 400 `pause_behavior_not_allowed`.",
    )
    resumes_at: AwareDatetime | None = Field(
        default=None,
        description="When payments resume by themselves (ISO 8601 with a UTC offset, in the "
        "future); null: until POST …/unpause.",
    )


@router.post(
    "/v1/subscriptions/{subscription_id}/pause",
    response_model=SubscriptionOut,
    responses=ERRORS,
    summary="Pause the payments (and, with behavior void, the service after the paid period)",
)
async def pause_subscription(
    subscription_id: StripeId, billing: ForManager, body: PauseIn | None = None
) -> Response:
    body = body or PauseIn()
    reply = await billing.pause_subscription(
        pause_pb2.PauseSubscriptionRequest(
            id=subscription_id, behavior=body.behavior, resume_time=timestamp(body.resumes_at)
        )
    )
    return rendering.json_response(rendering.subscription(reply.subscription))


@router.post(
    "/v1/subscriptions/{subscription_id}/unpause",
    response_model=SubscriptionOut,
    responses=ERRORS,
    summary="Resume the payments now",
)
async def unpause_subscription(subscription_id: StripeId, billing: ForManager) -> Response:
    reply = await billing.unpause_subscription(
        pause_pb2.UnpauseSubscriptionRequest(id=subscription_id)
    )
    return rendering.json_response(rendering.subscription(reply.subscription))
