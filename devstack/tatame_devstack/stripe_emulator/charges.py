"""Charges: each attempt to move a payment intent's money, as Stripe renders them."""

from typing import Any

import stripe
from localstripe.errors import UserError
from localstripe.resources import Charge, List, PaymentMethod

from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import reject_unknown
from tatame_devstack.stripe_emulator.payment_methods import render_payment_method, test_card
from tatame_devstack.stripe_emulator.render import expanded, expanded_under, shape
from tatame_devstack.stripe_emulator.state import stored

C = stripe.Charge
DECLINE = {
    "code": "card_declined",
    "decline_code": "generic_decline",
    "message": "Your card was declined.",
    "doc_url": "https://stripe.com/docs/error-codes/card-declined",
}
RECEIPTS = "https://pay.stripe-emulator.invalid/receipts/payment"


class CardError(UserError):
    """Stripe's 402 `card_error`: `error` has its code, decline code, message and objects."""

    def __init__(self, error: dict[str, Any]) -> None:
        details = {key: value for key, value in error.items() if key not in ("message", "type")}
        super().__init__(402, error["message"], details)
        self.body["error"]["type"] = "card_error"


def create_charge(
    *,
    amount: int,
    currency: str,
    customer: str | None,
    payment_method: PaymentMethod,
    payment_intent: str,
) -> Charge:
    """A charge of `amount` to `payment_method` for `payment_intent`, which succeeds unless the
    test card declines charges; with its `charge.succeeded` or `charge.failed` event (which
    names the payment intent, as Stripe's do)."""
    charge = Charge(amount=amount, currency=currency, customer=customer, source=payment_method.id)
    charge.payment_intent = payment_intent
    if test_card(payment_method).declines:
        charge._set_auth_failure()
        send_event("charge.failed", charge)
    else:
        charge._trigger_payment()  # its balance transaction; succeeded
        send_event("charge.succeeded", charge)
    return charge


def _outcome(charge: Charge) -> dict[str, Any]:
    if charge.status == "failed":
        values = {
            "network_status": "declined_by_network",
            "reason": DECLINE["decline_code"],
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    else:
        values = {
            "network_status": "approved_by_network",
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return shape(C.Outcome, values)


def _payment_method_details(payment_method: PaymentMethod) -> dict[str, Any]:
    details = C.PaymentMethodDetails
    boleto = getattr(payment_method, "boleto", None)
    if boleto is not None:
        return shape(details, {"type": "boleto", "boleto": shape(details.Boleto, boleto)})
    card = payment_method.card
    return shape(
        details,
        {
            "type": "card",
            "card": shape(
                details.Card,
                {
                    "amount_authorized": None,
                    "brand": card["brand"],
                    "checks": shape(details.Card.Checks, {"cvc_check": "pass"}),
                    "country": "US",
                    "exp_month": card["exp_month"],
                    "exp_year": card["exp_year"],
                    "fingerprint": card["fingerprint"],
                    "funding": card["funding"],
                    "last4": card["last4"],
                    "network": card["brand"],
                    "regulated_status": "unregulated",
                },
            ),
        },
    )


def render_charge(charge: Charge, expand: Any = None) -> dict[str, Any]:
    """A charge at the pinned API version (its `refunds` list is includable: rendered only when
    expanded)."""
    payment_method = PaymentMethod._api_retrieve(charge.payment_method)
    failed = charge.status == "failed"
    rendered = shape(
        C,
        {
            "id": charge.id,
            "object": "charge",
            "amount": charge.amount,
            "amount_captured": 0 if failed else charge.amount,
            "amount_refunded": charge.amount_refunded,
            "balance_transaction": charge.balance_transaction,
            "billing_details": shape(
                C.BillingDetails, render_payment_method(payment_method)["billing_details"]
            ),
            "calculated_statement_descriptor": "TATAME",
            "captured": not failed,
            "created": charge.created,
            "currency": charge.currency,
            "customer": charge.customer,
            "description": charge.description,
            "disputed": getattr(charge, "_disputed", False),
            "failure_code": charge.failure_code,
            "failure_message": charge.failure_message,
            "fraud_details": {},
            "livemode": False,
            "metadata": charge.metadata,
            "outcome": _outcome(charge),
            "paid": charge.paid,
            "payment_intent": charge.payment_intent,
            "payment_method": charge.payment_method,
            "payment_method_details": _payment_method_details(payment_method),
            "receipt_url": f"{RECEIPTS}/{charge.id}",
            "refunded": charge.refunded,
            "refunds": charge.refunds._export(expand=expanded_under(expand or [], "refunds")),
            "status": charge.status,
        },
        expand=expand or (),
    )
    return expanded(rendered, expand or [])


def list_charges(
    url: str,
    customer: Any = None,
    payment_intent: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **unknown: Any,
) -> Any:
    """`GET /v1/charges`, newest first, of one `customer` or `payment_intent` if given."""
    reject_unknown(unknown)
    page = List(url, limit=limit, starting_after=starting_after)
    page._list = [
        charge
        for charge in reversed(stored(Charge.object))
        if customer in (None, charge.customer) and payment_intent in (None, charge.payment_intent)
    ]
    return page


def extend_charges() -> None:
    """Charges on localstripe's class: listed and rendered as Stripe does at the pinned API
    version."""
    Charge._api_list_all = classmethod(lambda cls, url, **params: list_charges(url, **params))
    Charge._export = render_charge
