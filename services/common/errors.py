"""The errors services report to their callers: a reason (the machine code) and a safe message.

A reason travels over gRPC as a `google.rpc.ErrorInfo` detail (services/common/rpc.py) and is the
`code` of the gateway's error body for client errors, so its values are a public contract.
"""

from enum import StrEnum
from typing import ClassVar


class ErrorReason(StrEnum):
    """Why a call failed; values are stable lower_snake error codes."""

    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    CUSTOMER_REQUIRED = "customer_required"
    LIVE_SUBSCRIPTION_EXISTS = "live_subscription_exists"
    SUBSCRIPTION_NOT_CHANGEABLE = "subscription_not_changeable"
    SUBSCRIPTION_CANCELING = "subscription_canceling"
    SUBSCRIPTION_ENDED = "subscription_ended"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_REQUEST_IN_PROGRESS = "idempotency_request_in_progress"
    # A price that is not a fixed amount (tiered, metered, customer-chosen) cannot be taken.
    PRICE_NOT_SUBSCRIBABLE = "price_not_subscribable"
    # Promotion codes, checked as Stripe checks them before it applies one.
    PROMOTION_CODE_INVALID = "promotion_code_invalid"
    PROMOTION_CODE_INACTIVE = "promotion_code_inactive"
    PROMOTION_CODE_EXPIRED = "promotion_code_expired"
    PROMOTION_CODE_NOT_APPLICABLE = "promotion_code_not_applicable"
    PROMOTION_CODE_FIRST_TIME_ONLY = "promotion_code_first_time_only"
    PROMOTION_CODE_FULLY_REDEEMED = "promotion_code_fully_redeemed"
    PROMOTION_CODE_MINIMUM_AMOUNT = "promotion_code_minimum_amount"
    # The state does not allow the request (Stripe refused it, or no more precise reason).
    FAILED_PRECONDITION = "failed_precondition"
    STRIPE_UNAVAILABLE = "stripe_unavailable"
    # A rate limit: the gateway's (429), or Stripe's, which billing answers UNAVAILABLE with a
    # retry delay (503) while it backs off.
    RATE_LIMITED = "rate_limited"
    DATABASE_UNAVAILABLE = "database_unavailable"
    # Billing could not reach the webhooks inbox (an erasure or an export): try again.
    INBOX_UNAVAILABLE = "inbox_unavailable"
    # One event of a batch (ApplyStripeEvents) ran out of the call's time.
    APPLY_TIMED_OUT = "apply_timed_out"
    INTERNAL = "internal"
    # Refunds (operators): a payment not paid or already refunded in full; charged back by the
    # bank; a refund of more than is left.
    PAYMENT_NOT_REFUNDABLE = "payment_not_refundable"
    PAYMENT_DISPUTED = "payment_disputed"
    REFUND_EXCEEDS_PAYMENT = "refund_exceeds_payment"
    # Paying an invoice: it is not open; a payment declined (Stripe's decline codes, mapped by
    # services/billing/payment_failures.py); the bank's authentication failed; a processing error.
    INVOICE_NOT_OPEN = "invoice_not_open"
    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    INCORRECT_CARD_DETAILS = "incorrect_card_details"
    PAYMENT_AUTHENTICATION_FAILED = "payment_authentication_failed"
    PAYMENT_PROCESSING_ERROR = "payment_processing_error"
    # A plan change waits for its payment (a pending update): no other change until it is paid
    # or expires.
    SUBSCRIPTION_UPDATE_PENDING = "subscription_update_pending"
    # Currencies: not an ISO 4217 code; a currency the catalog sells nothing in (or not this
    # price); the customer already bills in another one (Stripe's one currency per customer).
    INVALID_CURRENCY = "invalid_currency"
    CURRENCY_NOT_OFFERED = "currency_not_offered"
    CUSTOMER_CURRENCY_MISMATCH = "customer_currency_mismatch"
    # Stripe Tax cannot locate the customer (no billing address, or one without what its
    # country needs: a US ZIP code): send the billing address first.
    CUSTOMER_TAX_LOCATION_INVALID = "customer_tax_location_invalid"
    # A usage record's identifier already went with another principal, meter or value.
    USAGE_IDENTIFIER_REUSED = "usage_identifier_reused"
    # Pausing payments: only an active, trialing or past_due subscription pauses; a behavior
    # the operator does not offer the app (BILLING_PAUSE_BEHAVIORS).
    SUBSCRIPTION_NOT_PAUSABLE = "subscription_not_pausable"
    PAUSE_BEHAVIOR_NOT_ALLOWED = "pause_behavior_not_allowed"


class ServiceError(Exception):
    """Base of every error a service reports: `reason` is the machine code, `message` is safe to
    show a client. Subclasses name their usual reason; a raise site may give a more precise one."""

    default_reason: ClassVar[ErrorReason] = ErrorReason.INTERNAL

    def __init__(
        self, message: str, *, reason: ErrorReason | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        # When the same call may succeed again (seconds), for a failure that knows it.
        self.retry_after = retry_after


# The reasons of a payment that failed (the card, the bank): the gateway answers them 402.
PAYMENT_FAILURES = frozenset(
    {
        ErrorReason.CARD_DECLINED,
        ErrorReason.INSUFFICIENT_FUNDS,
        ErrorReason.EXPIRED_CARD,
        ErrorReason.INCORRECT_CARD_DETAILS,
        ErrorReason.PAYMENT_AUTHENTICATION_FAILED,
        ErrorReason.PAYMENT_PROCESSING_ERROR,
    }
)
