"""Why a payment failed, as a stable reason an app can act on: Stripe's error code and decline
code (a PaymentIntent's `last_payment_error`, a card error) mapped to a few `ErrorReason`s.

Declines that hint at fraud (`fraudulent`, `lost_card`, `stolen_card`, `pickup_card`, …) are
`card_declined` like any other, as Stripe advises: the customer is told to use another card,
never why the bank refused.
"""

from collections.abc import Mapping

from services.common.errors import ErrorReason

_DETAILS = ErrorReason.INCORRECT_CARD_DETAILS
_AUTHENTICATION = ErrorReason.PAYMENT_AUTHENTICATION_FAILED
_PROCESSING = ErrorReason.PAYMENT_PROCESSING_ERROR

# Stripe's `decline_code` (the bank's answer) where it says more than "declined".
_BY_DECLINE_CODE: Mapping[str, ErrorReason] = {
    "insufficient_funds": ErrorReason.INSUFFICIENT_FUNDS,
    "expired_card": ErrorReason.EXPIRED_CARD,
    **dict.fromkeys(
        ("incorrect_cvc", "invalid_cvc", "incorrect_number", "invalid_number", "incorrect_zip"),
        _DETAILS,
    ),
    **dict.fromkeys(("invalid_expiry_month", "invalid_expiry_year"), _DETAILS),
    # Off session, the bank insisted on authenticating the card holder.
    "authentication_required": _AUTHENTICATION,
    **dict.fromkeys(
        ("processing_error", "try_again_later", "issuer_not_available", "reenter_transaction"),
        _PROCESSING,
    ),
}
# Stripe's error `code`, when there is no decline code that says more.
_BY_ERROR_CODE: Mapping[str, ErrorReason] = {
    "expired_card": ErrorReason.EXPIRED_CARD,
    **dict.fromkeys(
        ("incorrect_cvc", "invalid_cvc", "incorrect_number", "invalid_number", "incorrect_zip"),
        _DETAILS,
    ),
    **dict.fromkeys(("invalid_expiry_month", "invalid_expiry_year"), _DETAILS),
    **dict.fromkeys(
        (
            "authentication_required",
            "payment_intent_authentication_failure",
            "setup_intent_authentication_failure",
        ),
        _AUTHENTICATION,
    ),
    "processing_error": _PROCESSING,
}


def failure_reason(error_code: str | None, decline_code: str | None) -> ErrorReason | None:
    """The reason of a payment that failed with Stripe's `error_code` and `decline_code`; None
    when there is no error. Any other failure of a card is `card_declined`."""
    if error_code is None and decline_code is None:
        return None
    by_decline = _BY_DECLINE_CODE.get(decline_code or "")
    if by_decline is not None:
        return by_decline
    return _BY_ERROR_CODE.get(error_code or "", ErrorReason.CARD_DECLINED)
