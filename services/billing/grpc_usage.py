"""BillingService's usage methods: RecordUsage (internal services in BILLING_USAGE_CALLERS) and
GetUsage (the gateway, GET /v1/usage). A part of BillingServicer (grpc_api.py), which holds the
state they use."""

from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2_grpc, usage_pb2

from services.auth.grpc_interceptor import current_caller
from services.billing.grpc_policy import acting_principal
from services.billing.usage import metrics, records
from services.common.rpc import Context, rpc
from services.common.timestamps import optional_datetime, timestamp


class UsageRpcs(billing_pb2_grpc.BillingServiceServicer):
    """RecordUsage and GetUsage."""

    _engine: AsyncEngine

    @rpc
    async def RecordUsage(
        self, request: usage_pb2.RecordUsageRequest, context: Context
    ) -> usage_pb2.RecordUsageResponse:
        recorded = await records.record_usage(
            engine=self._engine,
            principal=await acting_principal(context),
            caller=current_caller().service,
            meter=request.meter,
            value=request.value,
            identifier=request.identifier,
            timestamp=optional_datetime(request, "timestamp"),
        )
        metrics.RECORDED.labels("recorded" if recorded else "duplicate").inc()
        return usage_pb2.RecordUsageResponse(recorded=recorded)

    @rpc
    async def GetUsage(
        self, request: usage_pb2.GetUsageRequest, context: Context
    ) -> usage_pb2.GetUsageResponse:
        usage = await records.get_usage(
            engine=self._engine, principal=await acting_principal(context)
        )
        return usage_pb2.GetUsageResponse(
            period_start=timestamp(usage.period_start),
            period_end=timestamp(usage.period_end),
            meters=[
                usage_pb2.MeterUsage(
                    meter_id=m.meter_id,
                    event_name=m.event_name,
                    display_name=m.display_name,
                    formula=m.formula,
                    value=m.value,
                    pending_records=m.pending_records,
                )
                for m in usage.meters
            ],
        )
