"""Payment intents, setup intents and payment methods, as a client confirms and manages them."""

from typing import Any

from localstripe.errors import UserError
from localstripe.resources import Customer, PaymentIntent, PaymentMethod, SetupIntent

from tatame_devstack.stripe_emulator.customers import attach
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import as_str, reject_unknown
from tatame_devstack.stripe_emulator.subscriptions import price_subscriptions


def confirm_payment_intent(id: str, payment_method: Any = None, **params: Any) -> PaymentIntent:
    """`POST /v1/payment_intents/{id}/confirm`, also with the `payment_method` to pay with (such
    as `pm_card_visa`), as PaymentSheet confirms."""
    if payment_method is not None:
        intent = PaymentIntent._api_retrieve(id)
        if intent.status not in ("requires_payment_method", "requires_confirmation"):
            raise UserError(400, f"This PaymentIntent's status is {intent.status}.")
        intent.payment_method = PaymentMethod._api_retrieve(
            as_str("payment_method", payment_method)
        ).id
    return PaymentIntent._api_confirm(id, **params)


def confirm_setup_intent(id: str, **params: Any) -> SetupIntent:
    """`POST /v1/setup_intents/{id}/confirm`; once it succeeds, its payment method is attached to
    its customer, and a subscription waiting for it (`pending_setup_intent`) uses it."""
    intent = SetupIntent._api_confirm(id, **params)
    if intent.status == "succeeded":
        if intent.customer is not None:
            attach(PaymentMethod._api_retrieve(intent.payment_method), intent.customer)
        send_event("setup_intent.succeeded", intent)
        for subscription in price_subscriptions():
            if subscription.pending_setup_intent == intent.id:
                subscription._on_setup_intent_succeeded(intent)
    return intent


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
    for subscription in price_subscriptions():
        if subscription.default_payment_method == id:
            subscription.default_payment_method = None
    PaymentMethod._api_detach(id)
    send_event("payment_method.detached", payment_method)
    return payment_method
