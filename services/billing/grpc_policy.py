"""Who may call each BillingService method: the gateway, the webhooks relay, the internal
services named in BILLING_ENTITLEMENT_CALLERS (entitlements only) and in BILLING_USAGE_CALLERS
(RecordUsage only); and each BillingAdminService method: the operators' CLI alone."""

from collections.abc import Mapping

import grpc
from tatame.billing.v1 import billing_pb2

from services.auth.grpc_interceptor import current_caller
from services.auth.principal import Principal
from services.common.rpc import Context

SERVICE_NAME = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name
ADMIN_SERVICE_NAME = billing_pb2.DESCRIPTOR.services_by_name["BillingAdminService"].full_name
GATEWAY = "gateway"
WEBHOOKS_RELAY = "webhooks-relay"
# The operators' command line (`python -m services.billing refund …`), as for the webhooks
# admin API: BILLING_SERVICE_SECRETS lists it as `ops-cli=<secret>` where operators refund.
OPS_CLI = "ops-cli"

# Methods only the gateway calls, for the principal its verified session token names.
_GATEWAY_METHODS = (
    "ListPlans",
    "GetCustomer",
    "CreateCustomer",
    "ListSubscriptions",
    "CreateCheckoutSession",
    "ConfirmCheckoutSession",
    "CreatePortalSession",
    "CreateSubscription",
    "PreviewPromotionCode",
    "CreateSetupIntent",
    "CreateEphemeralKey",
    "CreatePayment",
    "GetSubscription",
    "PreviewSubscriptionChange",
    "UpdateSubscription",
    "CancelSubscription",
    "ResumeSubscription",
    "ListInvoices",
    "ListPaymentMethods",
    "SetDefaultPaymentMethod",
    "DetachPaymentMethod",
    "ListPurchases",
    "PayInvoice",
    "GetBillingOverview",
    "EraseAccount",
    "ExportAccount",
    "RegisterDevice",
    "UnregisterDevice",
    "GetNotificationPreferences",
    "UpdateNotificationPreferences",
    "WatchBilling",
    "GetTaxLocation",
    "SetTaxLocation",
    "GetUsage",
    "PauseSubscription",
    "UnpauseSubscription",
)
# Methods other internal services may call too (BILLING_ENTITLEMENT_CALLERS).
_ENTITLEMENT_METHODS = ("ListEntitlements", "CheckEntitlement")


def method_policy(
    entitlement_callers: frozenset[str], usage_callers: frozenset[str] = frozenset()
) -> Mapping[str, frozenset[str]]:
    """Which internal services may call each method; anything not listed is refused (the apps,
    through the gateway, never report their own usage)."""
    policy = {f"/{SERVICE_NAME}/{name}": frozenset({GATEWAY}) for name in _GATEWAY_METHODS}
    for name in ("ApplyStripeEvent", "ApplyStripeEvents"):
        policy[f"/{SERVICE_NAME}/{name}"] = frozenset({WEBHOOKS_RELAY})
    for name in _ENTITLEMENT_METHODS:
        policy[f"/{SERVICE_NAME}/{name}"] = frozenset({GATEWAY}) | entitlement_callers
    policy[f"/{SERVICE_NAME}/RecordUsage"] = usage_callers
    for name in ("RefundPayment", "ListNotifications", "ReplayNotification", "GetRevenueMetrics"):
        policy[f"/{ADMIN_SERVICE_NAME}/{name}"] = frozenset({OPS_CLI})
    return policy


async def acting_principal(context: Context) -> Principal:
    """The principal the calling service acts for; methods about one principal require it."""
    principal = current_caller().principal
    if principal is not None:
        return principal
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED,
        "this method acts for a principal; the credential names none",
    )
    raise AssertionError("unreachable: abort raises")  # grpc-stubs 1.53 types abort as returning
