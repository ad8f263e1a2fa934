"""Customers and their payment methods: the default must be attached to the customer."""

from typing import Any

from localstripe.resources import Customer, List, PaymentMethod

from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import as_str, param_error, reject_unknown
from tatame_devstack.stripe_emulator.state import stored


def attach(payment_method: PaymentMethod, customer_id: str) -> None:
    """Attach as Stripe does (declining test cards refuse), with the event Stripe sends."""
    PaymentMethod._api_attach(payment_method.id, customer=customer_id)
    send_event("payment_method.attached", payment_method)


def customer_payment_method(param: str, value: Any, customer_id: str) -> PaymentMethod:
    """The payment method named by parameter `param`, which must be attached to the customer."""
    payment_method = PaymentMethod._api_retrieve(as_str(param, value))
    if payment_method.customer != customer_id:
        raise param_error(
            param,
            f"The customer does not have a payment method with the ID {payment_method.id}. "
            "The payment method must be attached to the customer.",
        )
    return payment_method


def update_customer(id: str, invoice_settings: Any = None, **params: Any) -> Customer:
    """`POST /v1/customers/{id}`: the default payment method must be attached to the customer."""
    if isinstance(invoice_settings, dict) and invoice_settings.get("default_payment_method"):
        customer_payment_method(
            "invoice_settings[default_payment_method]",
            invoice_settings["default_payment_method"],
            Customer._api_retrieve(id).id,
        )
    if invoice_settings is not None:
        params["invoice_settings"] = invoice_settings
    return Customer._api_update(id, **params)


def customer_payment_methods(
    id: str, type: Any = None, limit: Any = None, starting_after: Any = None, **unknown: Any
) -> List:
    """`GET /v1/customers/{id}/payment_methods`, of any or one `type`."""
    reject_unknown(unknown)
    Customer._api_retrieve(id)
    page = List(f"/v1/customers/{id}/payment_methods", limit=limit, starting_after=starting_after)
    page._list = [
        pm
        for pm in stored(PaymentMethod.object)
        if pm.customer == id and (type is None or pm.type == type)
    ]
    return page
