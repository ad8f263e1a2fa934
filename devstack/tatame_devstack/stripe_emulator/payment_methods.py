"""Payment methods as Stripe renders them, attached and detached; and Stripe's test payment
methods: what each card does when it is attached, charged or asked to authenticate."""

from dataclasses import dataclass
from typing import Any

import stripe
from localstripe.errors import UserError
from localstripe.resources import Customer, PaymentMethod

from tatame_devstack.stripe_emulator.boleto import BOLETO, create_boleto
from tatame_devstack.stripe_emulator.customers import attach
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import as_str, reject_unknown
from tatame_devstack.stripe_emulator.render import expanded, shape
from tatame_devstack.stripe_emulator.state import stored

PM = stripe.PaymentMethod


@dataclass(frozen=True)
class TestCard:
    """A test card number and what Stripe's test mode does with it."""

    number: str
    brand: str = "visa"
    declines_on_attach: bool = False
    declines_charges: bool = False
    requires_authentication: bool = False

    @property
    def declines(self) -> bool:
        return self.declines_on_attach or self.declines_charges


VISA = TestCard("4242424242424242")
# Stripe's test PaymentMethods (docs.stripe.com/testing), by the id a request may name.
TEST_PAYMENT_METHODS = {
    "pm_card_visa": VISA,
    "pm_card_mastercard": TestCard("5555555555554444", brand="mastercard"),
    # Declined with `generic_decline`; attaching it (which verifies the card) fails too.
    "pm_card_chargeDeclined": TestCard("4000000000000002", declines_on_attach=True),
    "pm_card_visa_chargeDeclined": TestCard("4000000000000002", declines_on_attach=True),
    # Attaching succeeds; every charge (e.g. a renewal) is declined.
    "pm_card_chargeCustomerFail": TestCard("4000000000000341", declines_charges=True),
    # Every payment asks the card holder for 3-D Secure.
    "pm_card_authenticationRequired": TestCard("4000002760003184", requires_authentication=True),
}
CARDS_BY_NUMBER = {card.number: card for card in TEST_PAYMENT_METHODS.values()}


def test_card(payment_method: Any) -> TestCard:
    """What the card of `payment_method` does (a card the emulator does not know pays)."""
    return CARDS_BY_NUMBER.get(getattr(payment_method, "_card_number", ""), VISA)


def _test_payment_method(cls: type[PaymentMethod], id: str) -> PaymentMethod | None:
    """A new PaymentMethod for a test id such as `pm_card_visa`, as Stripe makes one each time."""
    card = TEST_PAYMENT_METHODS.get(id)
    if card is None:
        return None
    payment_method = PaymentMethod(
        type="card", card={"number": card.number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    )
    payment_method.card["brand"] = card.brand
    return payment_method


def render_card(payment_method: PaymentMethod) -> dict[str, Any]:
    """The `card` hash of a card payment method."""
    card = payment_method.card
    return shape(
        PM.Card,
        {
            "brand": card["brand"],
            "checks": shape(PM.Card.Checks, {"cvc_check": "pass"}),
            "country": "US",
            "display_brand": card["brand"],
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "fingerprint": card["fingerprint"],
            "funding": card["funding"],
            "last4": card["last4"],
            "networks": shape(PM.Card.Networks, {"available": [card["brand"]]}),
            "regulated_status": "unregulated",
            "three_d_secure_usage": shape(PM.Card.ThreeDSecureUsage, {"supported": True}),
        },
    )


def render_payment_method(payment_method: PaymentMethod, expand: Any = None) -> dict[str, Any]:
    """A payment method at the pinned API version: a card, or a boleto (boleto.py)."""
    boleto = getattr(payment_method, "boleto", None)
    details = dict(payment_method.billing_details or {})
    if details.get("address") is not None:
        details["address"] = shape(PM.BillingDetails.Address, details["address"])
    rendered = shape(
        PM,
        {
            "id": payment_method.id,
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": shape(PM.BillingDetails, details),
            "boleto": None if boleto is None else shape(PM.Boleto, boleto),
            "card": render_card(payment_method) if payment_method.type == "card" else None,
            "created": payment_method.created,
            "customer": payment_method.customer,
            "livemode": False,
            "metadata": payment_method.metadata,
            "type": payment_method.type,
        },
    )
    return expanded(rendered, expand or ())


def create_payment_method(type: Any = None, **params: Any) -> PaymentMethod:
    """`POST /v1/payment_methods`: a boleto here; localstripe makes the rest."""
    if type == BOLETO:
        return create_boleto("payment_method", {"type": type, **params})
    return PaymentMethod(type=type, **params)


def extend_payment_methods() -> None:
    """Stripe's test payment methods, boleto and rendering, on localstripe's class."""
    PaymentMethod._api_create = classmethod(lambda cls, **params: create_payment_method(**params))
    PaymentMethod._try_get_canonical_test_article = classmethod(_test_payment_method)
    PaymentMethod._attaching_is_declined = lambda self: test_card(self).declines_on_attach
    PaymentMethod._charging_is_declined = lambda self: test_card(self).declines
    PaymentMethod._requires_authentication = lambda self: test_card(self).requires_authentication
    PaymentMethod._export = render_payment_method


def attach_payment_method(id: str, customer: Any = None, **unknown: Any) -> PaymentMethod:
    """`POST /v1/payment_methods/{id}/attach`, with the `payment_method.attached` event."""
    reject_unknown(unknown)
    payment_method = PaymentMethod._api_retrieve(id)
    attach(payment_method, as_str("customer", customer))
    return payment_method


def detach_payment_method(id: str, **unknown: Any) -> PaymentMethod:
    """`POST /v1/payment_methods/{id}/detach`: no longer any default, and the event."""
    reject_unknown(unknown)
    payment_method = PaymentMethod._api_retrieve(id)
    if payment_method.customer is None:
        raise UserError(400, f"The payment method {id} is not attached to a customer.")
    customer = Customer._api_retrieve(payment_method.customer)
    if customer.invoice_settings.get("default_payment_method") == id:
        customer.invoice_settings["default_payment_method"] = None
    for subscription in stored("subscription"):
        if getattr(subscription, "default_payment_method", None) == id:
            subscription.default_payment_method = None
    PaymentMethod._api_detach(id)
    send_event("payment_method.detached", payment_method)
    return payment_method
