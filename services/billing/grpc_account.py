"""BillingService's methods about the account as a whole: erasure and export on request, the
notification devices and preferences, and the live stream of the billing screen. A part of
BillingServicer (grpc_api.py), which holds the state they use."""

from collections.abc import AsyncIterator

import grpc
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc, notifications_pb2

from services.billing import grpc_messages as messages
from services.billing.grpc_policy import acting_principal
from services.billing.live.watch import Watchers
from services.billing.notifications import devices
from services.billing.notifications import rpc_messages as notification_messages
from services.billing.privacy import erasure, export
from services.billing.privacy.inbox import InboxClient
from services.common.rpc import Context, rpc, stream_rpc


class AccountRpcs(billing_pb2_grpc.BillingServiceServicer):
    """Erasure, export, notifications and WatchBilling."""

    _engine: AsyncEngine
    _stripe: stripe.StripeClient
    _inbox: InboxClient | None
    _watchers: Watchers

    @rpc
    async def EraseAccount(
        self, request: billing_pb2.EraseAccountRequest, context: Context
    ) -> billing_pb2.EraseAccountResponse:
        record = await erasure.erase(
            engine=self._engine,
            stripe_client=self._stripe,
            inbox=self._inbox,
            principal=await acting_principal(context),
            requested_by=erasure.API,
        )
        return billing_pb2.EraseAccountResponse(erasure=messages.erasure_message(record))

    @rpc
    async def ExportAccount(
        self, request: billing_pb2.ExportAccountRequest, context: Context
    ) -> billing_pb2.ExportAccountResponse:
        document = await export.export_account(
            engine=self._engine, inbox=self._inbox, principal=await acting_principal(context)
        )
        return billing_pb2.ExportAccountResponse(document=document)

    @rpc
    async def RegisterDevice(
        self, request: notifications_pb2.RegisterDeviceRequest, context: Context
    ) -> notifications_pb2.RegisterDeviceResponse:
        await devices.register_device(
            engine=self._engine,
            principal=await acting_principal(context),
            token=request.token,
            platform=request.platform,
        )
        return notifications_pb2.RegisterDeviceResponse()

    @rpc
    async def UnregisterDevice(
        self, request: notifications_pb2.UnregisterDeviceRequest, context: Context
    ) -> notifications_pb2.UnregisterDeviceResponse:
        await devices.unregister_device(
            engine=self._engine, principal=await acting_principal(context), token=request.token
        )
        return notifications_pb2.UnregisterDeviceResponse()

    @rpc
    async def GetNotificationPreferences(
        self, request: notifications_pb2.GetNotificationPreferencesRequest, context: Context
    ) -> notifications_pb2.GetNotificationPreferencesResponse:
        enabled = await devices.preferences(
            engine=self._engine, principal=await acting_principal(context)
        )
        return notifications_pb2.GetNotificationPreferencesResponse(
            preferences=notification_messages.preferences(enabled)
        )

    @rpc
    async def UpdateNotificationPreferences(
        self, request: notifications_pb2.UpdateNotificationPreferencesRequest, context: Context
    ) -> notifications_pb2.UpdateNotificationPreferencesResponse:
        enabled = await devices.update_preferences(
            engine=self._engine,
            principal=await acting_principal(context),
            enabled=notification_messages.wanted(request.preferences),
        )
        return notifications_pb2.UpdateNotificationPreferencesResponse(
            preferences=notification_messages.preferences(enabled)
        )

    @stream_rpc
    async def WatchBilling(
        self, request: billing_pb2.WatchBillingRequest, context: Context
    ) -> AsyncIterator[billing_pb2.WatchBillingResponse]:
        principal = await acting_principal(context)
        if self._watchers.closed:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "billing is shutting down")
        since = request.since_version if request.HasField("since_version") else None
        async for change in self._watchers.watch(principal, since):
            yield messages.watch_response(change)
