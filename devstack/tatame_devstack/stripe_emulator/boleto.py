"""Boleto, the one delayed payment method the emulator runs, as Stripe runs it for a Brazilian
account (payments in `brl`).

The customer confirms a PaymentIntent with a boleto (`payment_method_data[type]=boleto` with the
payer's CPF or CNPJ, name, email and address, as PaymentSheet and Checkout send it); Stripe
issues a voucher and the intent waits, `requires_action` with `next_action.boleto_display_details`
(its number, expiry, hosted page and PDF), while the customer pays it at a bank, which can take
days. The emulator has no bank: `POST /_testing/payment_intents/{id}/boleto` with
`outcome=pay` or `outcome=expire` says what happened, and the emulator sends what Stripe sends:
paid, the charge and `payment_intent.succeeded` (its invoice paid, its subscription active, its
Checkout Session's `checkout.session.async_payment_succeeded`); expired unpaid, the intent goes
back to `requires_payment_method` with a `payment_intent_payment_attempt_expired` error
(`payment_intent.payment_failed`, its invoice's `invoice.payment_failed`, its Checkout Session's
`checkout.session.async_payment_failed`).
"""

import time
from typing import Any

from localstripe.errors import UserError
from localstripe.resources import PaymentIntent, PaymentMethod, StripeObject

from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    as_metadata,
    as_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.state import stored

BOLETO = "boleto"
BOLETO_CURRENCY = "brl"
VOUCHER_PAGES = "https://payments.stripe-emulator.invalid/boleto"
# Stripe's default `payment_method_options.boleto.expires_after_days`.
EXPIRES_AFTER_DAYS = 3
_ADDRESS_FIELDS = ("line1", "city", "state", "postal_code", "country")
EXPIRED = {
    "type": "invalid_request_error",
    "code": "payment_intent_payment_attempt_expired",
    "message": "The latest payment attempt of this PaymentIntent has expired. Provide a new "
    "payment method to attempt to fulfill this PaymentIntent again.",
    "doc_url": "https://stripe.com/docs/error-codes/payment-intent-payment-attempt-expired",
}


def allowed_types(param: str, value: Any) -> list[str] | None:
    """`allowed_payment_method_types` (since API version 2026-10-28 the filter on the dynamic
    payment methods, which replaced `payment_method_types`): None when unset."""
    if value is None or value == "":
        return None
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise param_error(param, f"Invalid array: {param}")
    return sorted(set(value))


def offered_types(currency: str, allowed: list[str] | None) -> list[str]:
    """What the account offers for `currency` (cards, and boleto in `brl`: the methods its
    dashboard enables), filtered by `allowed`."""
    enabled = ["boleto", "card"] if currency == BOLETO_CURRENCY else ["card"]
    return [t for t in enabled if allowed is None or t in allowed]


def is_boleto(payment_method: Any) -> bool:
    return getattr(payment_method, "type", None) == BOLETO


def _tax_id(param: str, value: Any) -> str:
    """A CPF (11 digits) or CNPJ (14 digits), punctuated or not."""
    tax_id = as_str(param, value)
    digits = "".join(c for c in tax_id if c.isdigit())
    if len(digits) not in (11, 14) or not all(c.isdigit() or c in ".-/" for c in tax_id):
        raise param_error(param, "Invalid tax_id: a CPF (11 digits) or CNPJ (14 digits).")
    return tax_id


def _billing_details(param: str, value: Any) -> dict[str, Any]:
    """What a boleto requires of its payer: name, email and full address."""
    if not isinstance(value, dict):
        raise param_error(param, f"Missing required param: {param}.")
    details = dict(value)
    name = as_str(f"{param}[name]", details.pop("name", None))
    email = as_str(f"{param}[email]", details.pop("email", None))
    address = details.pop("address", None)
    if not isinstance(address, dict):
        raise param_error(f"{param}[address]", f"Missing required param: {param}[address].")
    address = dict(address)
    full: dict[str, str | None] = {
        field: as_str(f"{param}[address][{field}]", address.pop(field, None))
        for field in _ADDRESS_FIELDS
    }
    full["line2"] = address.pop("line2", None) or None
    reject_unknown(address, parent=f"{param}[address]")
    phone = details.pop("phone", None) or None
    reject_unknown(details, parent=param)
    return {"name": name, "email": email, "address": full, "phone": phone}


def create_boleto(param: str, data: Any) -> PaymentMethod:
    """A boleto PaymentMethod from `payment_method_data` (or `POST /v1/payment_methods`)."""
    if not isinstance(data, dict):
        raise param_error(param, "Invalid hash")
    data = dict(data)
    as_str(f"{param}[type]", data.pop("type", None), choices=(BOLETO,))
    boleto = data.pop(BOLETO, None)
    tax_id = _tax_id(
        f"{param}[boleto][tax_id]",
        (boleto or {}).get("tax_id") if isinstance(boleto, dict) else None,
    )
    details = _billing_details(f"{param}[billing_details]", data.pop("billing_details", None))
    metadata = as_metadata(data.pop("metadata", None))
    reject_unknown(data, parent=param)
    # localstripe's constructor knows cards and SEPA debits only: the object is made here.
    payment_method = PaymentMethod.__new__(PaymentMethod)
    StripeObject.__init__(payment_method)
    payment_method.type, payment_method.boleto = BOLETO, {"tax_id": tax_id}
    payment_method.billing_details, payment_method.metadata = details, metadata
    payment_method.customer = None
    return payment_method


def issue_voucher(intent: PaymentIntent) -> str:
    """Confirmed with a boleto: the voucher is issued and the intent waits for it to be paid
    (`payment_intent.requires_action`). A boleto takes `brl` only."""
    if intent.currency != BOLETO_CURRENCY:
        raise UserError(
            400,
            f"The currency provided ({intent.currency}) is invalid. Payments with boleto support "
            "the following currencies: brl.",
            {"code": "payment_intent_invalid_parameter", "param": "payment_method"},
        )
    expires_at = int(time.time()) + EXPIRES_AFTER_DAYS * 24 * 60 * 60
    number = "".join(str(int(c, 36) % 10) for c in intent.id.removeprefix("pi_"))
    intent.next_action = {
        "type": "boleto_display_details",
        "boleto_display_details": {
            "expires_at": expires_at,
            "hosted_voucher_url": f"{VOUCHER_PAGES}/{intent.id}",
            "number": (number * 4)[:47],
            "pdf": f"{VOUCHER_PAGES}/{intent.id}/pdf",
        },
    }
    send_event("payment_intent.requires_action", intent)
    return str(intent.status)


def session_of(intent: PaymentIntent) -> Any:
    """The Checkout Session whose first invoice `intent` pays, if any."""
    if intent.invoice is None:
        return None
    return next((s for s in stored("checkout.session") if s.invoice == intent.invoice), None)
