"""Domain errors of billing. Status codes are chosen at the edge (grpc_api), never here."""


class BillingError(Exception):
    """Base of every error billing reports to its callers; the message is safe to show."""


class NotFound(BillingError):
    """The principal has no such object."""


class InvalidArgument(BillingError):
    """The request is malformed or breaks a rule of the domain."""


class StripeUnavailable(BillingError):
    """Stripe could not be reached or failed; the same call may succeed later."""


class StripeRejected(BillingError):
    """Stripe refused the request; repeating it unchanged will not help."""


class DatabaseUnavailable(BillingError):
    """The database was unreachable or gave up the transaction; the same call may succeed later."""


class Conflict(BillingError):
    """The request is well formed, but the principal's billing state does not allow it now.

    The message starts with a stable reason (`live_subscription_exists: …`) that callers may match.
    """


class LiveSubscriptionExists(Conflict):
    """The principal already holds a live subscription; a second one is refused."""


class IdempotencyKeyReused(Conflict):
    """An idempotency key came again with another request (`idempotency_key_reused`)."""


class RequestInProgress(Conflict):
    """A request with the same idempotency key is still running (`idempotency_request_in_progress`)."""
