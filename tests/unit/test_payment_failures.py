"""A failed payment's reason: Stripe's error and decline codes mapped to the few reasons an app
acts on; anything else a card does wrong is `card_declined`, fraud hints included."""

import pytest

from services.billing.payment_failures import failure_reason
from services.common.errors import PAYMENT_FAILURES, ErrorReason
from services.common.rpc import STATUS_OF


@pytest.mark.parametrize(
    ("error_code", "decline_code", "reason"),
    [
        ("card_declined", "generic_decline", ErrorReason.CARD_DECLINED),
        ("card_declined", "insufficient_funds", ErrorReason.INSUFFICIENT_FUNDS),
        ("card_declined", "expired_card", ErrorReason.EXPIRED_CARD),
        ("expired_card", None, ErrorReason.EXPIRED_CARD),
        ("incorrect_cvc", None, ErrorReason.INCORRECT_CARD_DETAILS),
        ("card_declined", "incorrect_number", ErrorReason.INCORRECT_CARD_DETAILS),
        ("card_declined", "authentication_required", ErrorReason.PAYMENT_AUTHENTICATION_FAILED),
        ("payment_intent_authentication_failure", None, ErrorReason.PAYMENT_AUTHENTICATION_FAILED),
        ("processing_error", None, ErrorReason.PAYMENT_PROCESSING_ERROR),
        ("card_declined", "try_again_later", ErrorReason.PAYMENT_PROCESSING_ERROR),
        ("card_declined", "stolen_card", ErrorReason.CARD_DECLINED),
        ("card_declined", "fraudulent", ErrorReason.CARD_DECLINED),
        ("card_declined", None, ErrorReason.CARD_DECLINED),
        ("a_code_stripe_adds_later", None, ErrorReason.CARD_DECLINED),
    ],
)
def test_stripes_codes_map_to_a_stable_reason(
    error_code: str, decline_code: str | None, reason: ErrorReason
) -> None:
    assert failure_reason(error_code, decline_code) is reason


def test_no_error_is_no_reason() -> None:
    assert failure_reason(None, None) is None


def test_every_reason_a_decline_maps_to_is_a_payment_failure() -> None:
    codes = ["generic_decline", "insufficient_funds", "expired_card", "incorrect_cvc"]
    codes += [
        "authentication_required",
        "processing_error",
        "payment_intent_authentication_failure",
    ]
    reasons = {failure_reason(code, code) for code in codes} | {failure_reason(None, "x")}
    assert reasons == PAYMENT_FAILURES
    assert {STATUS_OF[reason].name for reason in PAYMENT_FAILURES} == {"FAILED_PRECONDITION"}
