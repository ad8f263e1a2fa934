"""Domain errors of billing. Each names its usual reason; statuses are chosen from the reason at
the edge (services/common/rpc.py), never here."""

from services.common.errors import ErrorReason, ServiceError


class BillingError(ServiceError):
    """Base of every error billing reports to its callers; the message is safe to show."""


class NotFound(BillingError):
    """The principal has no such object."""

    default_reason = ErrorReason.NOT_FOUND


class InvalidArgument(BillingError):
    """The request is malformed or breaks a rule of the domain."""

    default_reason = ErrorReason.INVALID_ARGUMENT


class StripeUnavailable(BillingError):
    """Stripe could not be reached or failed; the same call may succeed later."""

    default_reason = ErrorReason.STRIPE_UNAVAILABLE


class StripeRejected(BillingError):
    """Stripe refused the request; repeating it unchanged will not help."""

    default_reason = ErrorReason.FAILED_PRECONDITION


class Conflict(BillingError):
    """The request is well formed, but the principal's billing state does not allow it now; the
    reason says which state (`customer_required`, `subscription_ended`, …)."""

    default_reason = ErrorReason.FAILED_PRECONDITION


class LiveSubscriptionExists(Conflict):
    """The principal already holds a live subscription; a second one is refused."""

    default_reason = ErrorReason.LIVE_SUBSCRIPTION_EXISTS


class IdempotencyKeyReused(Conflict):
    """An idempotency key came again with another request."""

    default_reason = ErrorReason.IDEMPOTENCY_KEY_REUSED


class RequestInProgress(Conflict):
    """A request with the same idempotency key is still running."""

    default_reason = ErrorReason.IDEMPOTENCY_REQUEST_IN_PROGRESS


class PaymentFailed(BillingError):
    """A payment was declined or could not be made; the reason says why (payment_failures.py)."""

    default_reason = ErrorReason.CARD_DECLINED
