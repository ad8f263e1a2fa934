"""The gateway's side of billing: one channel, and BillingService as typed methods called with a
deadline and the gateway's credential, acting for one principal (or none, for public data)."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tatame.billing.v1 import billing_pb2 as pb
from tatame.billing.v1 import billing_pb2_grpc, pause_pb2, tax_pb2, usage_pb2
from tatame.billing.v1 import notifications_pb2 as notify_pb

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.common.grpc_server import CHANNEL_OPTIONS
from services.common.grpc_tls import GrpcTlsSettings
from services.common.idempotency import IDEMPOTENCY_METADATA
from services.common.logging import REQUEST_ID_METADATA, request_id_var

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


class BillingClient:
    """The channel to billing, its health, and calls acting for a principal."""

    def __init__(
        self,
        *,
        target: str,
        credentials: ServiceCredentials,
        timeout: float,
        tls: GrpcTlsSettings | None = None,
    ) -> None:
        self._channel = (
            tls.channel(target, options=CHANNEL_OPTIONS)
            if tls is not None
            else grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        )
        self._stub = billing_pb2_grpc.BillingServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._credentials = credentials
        self._timeout = timeout

    def acting_for(self, principal: Principal | None) -> "BillingCalls":
        """BillingService on behalf of `principal` (None: public data, such as the plans)."""
        return BillingCalls(self._stub, self._credentials, principal, timeout=self._timeout)

    async def is_serving(self) -> bool:
        """Whether billing's health service answers SERVING within a second."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        except grpc.aio.AioRpcError:
            return False
        serving: bool = reply.status == health_pb2.HealthCheckResponse.SERVING
        return serving

    async def close(self) -> None:
        await self._channel.close(grace=None)


class BillingCalls:
    """tatame.billing.v1.BillingService for one principal: one typed method per RPC the gateway
    makes. Creates take the client's `Idempotency-Key`, which billing reads from the metadata.

    The service token is signed when a call is made, not when a route receives this object: a
    route answered from the gateway's caches makes no call and signs nothing (the signature and
    its random `jti` were ~12 % of a cached `GET /v1/customer`, py-spy under wrk)."""

    def __init__(
        self,
        stub: billing_pb2_grpc.BillingServiceStub,
        credentials: ServiceCredentials,
        principal: Principal | None,
        *,
        timeout: float,
    ) -> None:
        self._stub = stub
        self._credentials = credentials
        self._principal = principal
        self._timeout = timeout

    async def _call(
        self,
        method: Callable[..., Awaitable[Resp]],
        request: Req,
        idempotency_key: str | None,
    ) -> Resp:
        metadata = self._credentials.metadata(self._principal)
        if (request_id := request_id_var.get()) is not None:
            metadata += ((REQUEST_ID_METADATA, request_id),)
        if idempotency_key is not None:
            metadata += ((IDEMPOTENCY_METADATA, idempotency_key),)
        return await method(request, timeout=self._timeout, metadata=metadata)

    async def list_plans(self, request: pb.ListPlansRequest) -> pb.ListPlansResponse:
        return await self._call(self._stub.ListPlans, request, None)

    async def get_customer(self, request: pb.GetCustomerRequest) -> pb.GetCustomerResponse:
        return await self._call(self._stub.GetCustomer, request, None)

    async def create_customer(
        self, request: pb.CreateCustomerRequest, *, idempotency_key: str | None = None
    ) -> pb.CreateCustomerResponse:
        return await self._call(self._stub.CreateCustomer, request, idempotency_key)

    async def list_subscriptions(
        self, request: pb.ListSubscriptionsRequest
    ) -> pb.ListSubscriptionsResponse:
        return await self._call(self._stub.ListSubscriptions, request, None)

    async def create_checkout_session(
        self, request: pb.CreateCheckoutSessionRequest, *, idempotency_key: str | None = None
    ) -> pb.CreateCheckoutSessionResponse:
        return await self._call(self._stub.CreateCheckoutSession, request, idempotency_key)

    async def confirm_checkout_session(
        self, request: pb.ConfirmCheckoutSessionRequest
    ) -> pb.ConfirmCheckoutSessionResponse:
        return await self._call(self._stub.ConfirmCheckoutSession, request, None)

    async def create_portal_session(
        self, request: pb.CreatePortalSessionRequest, *, idempotency_key: str | None = None
    ) -> pb.CreatePortalSessionResponse:
        return await self._call(self._stub.CreatePortalSession, request, idempotency_key)

    async def create_subscription(
        self, request: pb.CreateSubscriptionRequest, *, idempotency_key: str | None = None
    ) -> pb.CreateSubscriptionResponse:
        return await self._call(self._stub.CreateSubscription, request, idempotency_key)

    async def preview_promotion_code(
        self, request: pb.PreviewPromotionCodeRequest
    ) -> pb.PreviewPromotionCodeResponse:
        return await self._call(self._stub.PreviewPromotionCode, request, None)

    async def create_setup_intent(
        self, request: pb.CreateSetupIntentRequest, *, idempotency_key: str | None = None
    ) -> pb.CreateSetupIntentResponse:
        return await self._call(self._stub.CreateSetupIntent, request, idempotency_key)

    async def create_ephemeral_key(
        self, request: pb.CreateEphemeralKeyRequest, *, idempotency_key: str | None = None
    ) -> pb.CreateEphemeralKeyResponse:
        return await self._call(self._stub.CreateEphemeralKey, request, idempotency_key)

    async def get_tax_location(
        self, request: tax_pb2.GetTaxLocationRequest
    ) -> tax_pb2.GetTaxLocationResponse:
        return await self._call(self._stub.GetTaxLocation, request, None)

    async def set_tax_location(
        self, request: tax_pb2.SetTaxLocationRequest, *, idempotency_key: str | None = None
    ) -> tax_pb2.SetTaxLocationResponse:
        return await self._call(self._stub.SetTaxLocation, request, idempotency_key)

    async def create_payment(
        self, request: pb.CreatePaymentRequest, *, idempotency_key: str | None = None
    ) -> pb.CreatePaymentResponse:
        return await self._call(self._stub.CreatePayment, request, idempotency_key)

    async def get_subscription(
        self, request: pb.GetSubscriptionRequest
    ) -> pb.GetSubscriptionResponse:
        return await self._call(self._stub.GetSubscription, request, None)

    async def preview_subscription_change(
        self, request: pb.PreviewSubscriptionChangeRequest
    ) -> pb.PreviewSubscriptionChangeResponse:
        return await self._call(self._stub.PreviewSubscriptionChange, request, None)

    async def update_subscription(
        self, request: pb.UpdateSubscriptionRequest, *, idempotency_key: str | None = None
    ) -> pb.UpdateSubscriptionResponse:
        return await self._call(self._stub.UpdateSubscription, request, idempotency_key)

    async def cancel_subscription(
        self, request: pb.CancelSubscriptionRequest
    ) -> pb.CancelSubscriptionResponse:
        return await self._call(self._stub.CancelSubscription, request, None)

    async def resume_subscription(
        self, request: pb.ResumeSubscriptionRequest
    ) -> pb.ResumeSubscriptionResponse:
        return await self._call(self._stub.ResumeSubscription, request, None)

    async def pause_subscription(
        self, request: pause_pb2.PauseSubscriptionRequest
    ) -> pb.PauseSubscriptionResponse:
        return await self._call(self._stub.PauseSubscription, request, None)

    async def unpause_subscription(
        self, request: pause_pb2.UnpauseSubscriptionRequest
    ) -> pb.UnpauseSubscriptionResponse:
        return await self._call(self._stub.UnpauseSubscription, request, None)

    async def list_invoices(self, request: pb.ListInvoicesRequest) -> pb.ListInvoicesResponse:
        return await self._call(self._stub.ListInvoices, request, None)

    async def list_payment_methods(
        self, request: pb.ListPaymentMethodsRequest
    ) -> pb.ListPaymentMethodsResponse:
        return await self._call(self._stub.ListPaymentMethods, request, None)

    async def set_default_payment_method(
        self, request: pb.SetDefaultPaymentMethodRequest
    ) -> pb.SetDefaultPaymentMethodResponse:
        return await self._call(self._stub.SetDefaultPaymentMethod, request, None)

    async def detach_payment_method(
        self, request: pb.DetachPaymentMethodRequest
    ) -> pb.DetachPaymentMethodResponse:
        return await self._call(self._stub.DetachPaymentMethod, request, None)

    async def pay_invoice(
        self, request: pb.PayInvoiceRequest, *, idempotency_key: str | None = None
    ) -> pb.PayInvoiceResponse:
        return await self._call(self._stub.PayInvoice, request, idempotency_key)

    async def get_billing_overview(
        self, request: pb.GetBillingOverviewRequest
    ) -> pb.GetBillingOverviewResponse:
        return await self._call(self._stub.GetBillingOverview, request, None)

    def watch_billing(
        self, request: pb.WatchBillingRequest, *, timeout: float
    ) -> "grpc.aio.UnaryStreamCall[pb.WatchBillingRequest, pb.WatchBillingResponse]":
        """The principal's billing overview as it changes, for up to `timeout` seconds (a
        stream: no default deadline)."""
        call: grpc.aio.UnaryStreamCall[pb.WatchBillingRequest, pb.WatchBillingResponse] = (
            self._stub.WatchBilling(
                request, timeout=timeout, metadata=self._credentials.metadata(self._principal)
            )
        )
        return call

    async def list_entitlements(
        self, request: pb.ListEntitlementsRequest
    ) -> pb.ListEntitlementsResponse:
        return await self._call(self._stub.ListEntitlements, request, None)

    async def check_entitlement(
        self, request: pb.CheckEntitlementRequest
    ) -> pb.CheckEntitlementResponse:
        return await self._call(self._stub.CheckEntitlement, request, None)

    async def get_usage(self, request: usage_pb2.GetUsageRequest) -> usage_pb2.GetUsageResponse:
        return await self._call(self._stub.GetUsage, request, None)

    async def list_purchases(self, request: pb.ListPurchasesRequest) -> pb.ListPurchasesResponse:
        return await self._call(self._stub.ListPurchases, request, None)

    async def erase_account(self, request: pb.EraseAccountRequest) -> pb.EraseAccountResponse:
        return await self._call(self._stub.EraseAccount, request, None)

    async def export_account(self, request: pb.ExportAccountRequest) -> pb.ExportAccountResponse:
        return await self._call(self._stub.ExportAccount, request, None)

    async def register_device(
        self, request: notify_pb.RegisterDeviceRequest
    ) -> notify_pb.RegisterDeviceResponse:
        return await self._call(self._stub.RegisterDevice, request, None)

    async def unregister_device(
        self, request: notify_pb.UnregisterDeviceRequest
    ) -> notify_pb.UnregisterDeviceResponse:
        return await self._call(self._stub.UnregisterDevice, request, None)

    async def get_notification_preferences(
        self, request: notify_pb.GetNotificationPreferencesRequest
    ) -> notify_pb.GetNotificationPreferencesResponse:
        return await self._call(self._stub.GetNotificationPreferences, request, None)

    async def update_notification_preferences(
        self, request: notify_pb.UpdateNotificationPreferencesRequest
    ) -> notify_pb.UpdateNotificationPreferencesResponse:
        return await self._call(self._stub.UpdateNotificationPreferences, request, None)
