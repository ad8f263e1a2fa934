"""What billing reads of a PaymentIntent that waits for a payment made outside the app: the
voucher of each delayed method (boleto, Pix, OXXO…), a debit processing, and a card's 3-D Secure
that is no such wait."""

from datetime import UTC, datetime

from services.billing.async_payments import NO_VOUCHER, Voucher, voucher_of, waits_outside
from services.billing.invoices import payment_action

EXPIRES = 1_800_000_000


def intent(status: str, next_action: dict | None = None, payment_method: object = "pm_1") -> dict:
    return {"status": status, "next_action": next_action, "payment_method": payment_method}


def test_a_boleto_or_pix_voucher_gives_its_method_expiry_and_hosted_page() -> None:
    boleto = intent(
        "requires_action",
        {
            "type": "boleto_display_details",
            "boleto_display_details": {
                "expires_at": EXPIRES,
                "hosted_voucher_url": "https://payments.stripe.com/boleto/x",
                "number": "0123",
                "pdf": "https://payments.stripe.com/boleto/x/pdf",
            },
        },
    )
    pix = intent(
        "requires_action",
        {
            "type": "pix_display_qr_code",
            "pix_display_qr_code": {
                "expires_at": EXPIRES,
                "hosted_instructions_url": "https://payments.stripe.com/pix/y",
            },
        },
    )
    at = datetime.fromtimestamp(EXPIRES, UTC)

    assert voucher_of(boleto) == Voucher("boleto", at, "https://payments.stripe.com/boleto/x")
    assert voucher_of(pix) == Voucher("pix", at, "https://payments.stripe.com/pix/y")
    assert waits_outside(boleto)
    assert waits_outside(pix)
    assert payment_action("requires_action", "boleto") == "wait"


def test_a_debit_processing_waits_and_says_its_method_when_expanded() -> None:
    processing = intent("processing", payment_method={"id": "pm_1", "type": "sepa_debit"})

    assert voucher_of(processing) == Voucher("sepa_debit", None, None)
    assert voucher_of(intent("processing")) == NO_VOUCHER
    assert waits_outside(intent("processing"))
    assert payment_action("processing", None) == "wait"


def test_an_expired_voucher_is_recorded_beside_its_invoice_too() -> None:
    expired = {
        "status": "requires_payment_method",
        "next_action": None,
        "payment_method": None,
        "last_payment_error": {"code": "payment_intent_payment_attempt_expired"},
    }
    declined = {**expired, "last_payment_error": {"code": "card_declined"}}

    assert waits_outside(expired)
    assert not waits_outside(declined)


def test_a_cards_3d_secure_is_no_payment_made_outside_the_app() -> None:
    three_d_secure = intent(
        "requires_action", {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "x"}}
    )

    assert voucher_of(three_d_secure) == NO_VOUCHER
    assert not waits_outside(three_d_secure)
    assert not waits_outside(intent("succeeded"))
    assert payment_action("requires_action", None) == "authenticate"
    assert payment_action("requires_payment_method", None) == "pay"
