"""The caller's usage this period, per meter (usage-based prices)."""

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from tatame.billing.v1 import usage_pb2

from gateway import rendering
from gateway.dependencies import ForCaller
from gateway.schemas import error_responses
from services.common.timestamps import optional_datetime

router = APIRouter(tags=["usage"])


class MeterUsageOut(BaseModel):
    meter: str = Field(description="Stripe billing meter id (mtr_...).")
    event_name: str = Field(description="What the meter measures, e.g. video_minutes.")
    display_name: str
    formula: str = Field(description="sum, count or last: how the period's usage adds up.")
    value: int = Field(description="The period's usage, aggregated by `formula`.")
    pending_records: int = Field(description="Records of the period not sent to Stripe yet.")


class UsageOut(BaseModel):
    period_start: datetime = Field(
        description="The current period of the caller's subscription, else of the calendar "
        "month (UTC)."
    )
    period_end: datetime
    meters: list[MeterUsageOut]


@router.get(
    "/v1/usage",
    response_model=UsageOut,
    responses=error_responses(401, 503),
    summary="The caller's usage this period, per meter (from billing's usage records)",
)
async def get_usage(billing: ForCaller) -> Response:
    reply = await billing.get_usage(usage_pb2.GetUsageRequest())
    start = optional_datetime(reply, "period_start")
    end = optional_datetime(reply, "period_end")
    # Billing always sends the period.
    assert start is not None
    assert end is not None
    return rendering.json_response(
        UsageOut(
            period_start=start,
            period_end=end,
            meters=[
                MeterUsageOut(
                    meter=m.meter_id,
                    event_name=m.event_name,
                    display_name=m.display_name,
                    formula=m.formula,
                    value=m.value,
                    pending_records=m.pending_records,
                )
                for m in reply.meters
            ],
        )
    )
