"""Customers and their payment methods: the default must be attached to the customer; a
customer may live on a test clock."""

import time
from typing import Any

import stripe
from localstripe.errors import UserError
from localstripe.resources import Customer, List, PaymentMethod, store

from tatame_devstack.stripe_emulator.currencies import customer_currency
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    as_optional_str,
    as_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.render import expanded, shape
from tatame_devstack.stripe_emulator.state import stored
from tatame_devstack.stripe_emulator.tax import checked_customer_tax, render_customer_tax

TEST_CLOCK_OBJECT = "test_helpers.test_clock"
# The includable fields of a customer that are lists (rendered when expanded).
LISTS = ("sources", "subscriptions", "tax_ids")


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


def update_customer(
    id: str, invoice_settings: Any = None, tax: Any = None, **params: Any
) -> Customer:
    """`POST /v1/customers/{id}`: the default payment method must be attached to the customer;
    with `tax[validate_location]=immediately`, the new address must locate it for Stripe Tax
    (nothing is updated otherwise)."""
    if isinstance(invoice_settings, dict) and invoice_settings.get("default_payment_method"):
        customer_payment_method(
            "invoice_settings[default_payment_method]",
            invoice_settings["default_payment_method"],
            Customer._api_retrieve(id).id,
        )
    if invoice_settings is not None:
        params["invoice_settings"] = invoice_settings
    if tax is not None:
        address = params["address"] if "address" in params else Customer._api_retrieve(id).address
        checked_customer_tax(tax, address if isinstance(address, dict) else None)
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


class ClockCustomer(Customer):
    """localstripe's Customer, also on a test clock (`test_clock`, shown from its first event):
    then created at the clock's frozen time."""

    test_clock: str | None = None

    def __init__(self, test_clock: Any = None, **params: Any) -> None:
        clock_id = as_optional_str("test_clock", test_clock)
        if clock_id is not None and f"{TEST_CLOCK_OBJECT}:{clock_id}" not in store:
            raise UserError(404, f"No such test_clock: '{clock_id}'", {"code": "resource_missing"})
        self.test_clock = clock_id
        super().__init__(**params)

    @property
    def created(self) -> int:
        return self._created

    @created.setter
    def created(self, now: int) -> None:
        """localstripe sets it to the wall clock's time; a customer on a clock takes the clock's."""
        self._created = clock_time(self.test_clock, now)


def clock_time(clock_id: str | None, now: int) -> int:
    """The time on a customer's test clock (`clock_id`), or `now` (the wall clock's) when the
    customer is on none."""
    return now if clock_id is None else store[f"{TEST_CLOCK_OBJECT}:{clock_id}"].frozen_time


def customer_time(customer_id: str) -> int:
    """What time it is for a customer: its test clock's frozen time, or the wall clock's."""
    customer = Customer._api_retrieve(customer_id)
    return clock_time(getattr(customer, "test_clock", None), int(time.time()))


def customers_on_clock(clock_id: str) -> list[Customer]:
    return [c for c in stored(Customer.object) if getattr(c, "test_clock", None) == clock_id]


def render_customer(customer: Customer, expand: Any = None) -> dict[str, Any]:
    """A customer at the pinned API version (`sources`, `subscriptions`, `tax_ids`… are
    includable: rendered only when expanded)."""
    expand = expand or []
    settings = customer.invoice_settings
    invoices = [
        invoice
        for invoice in stored("invoice")
        if invoice.customer == customer.id and invoice.status != "draft"
    ]
    values = {
        "id": customer.id,
        "object": "customer",
        "address": (
            None if customer.address is None else shape(stripe.Customer.Address, customer.address)
        ),
        "balance": -customer.account_balance,
        "created": customer.created,
        "currency": customer_currency(customer.id),
        "default_source": customer.default_source,
        "delinquent": customer.delinquent,
        "description": customer.description,
        "discount": customer.discount,
        "email": customer.email,
        "invoice_prefix": customer.id.removeprefix("cus_")[:8].upper(),
        "invoice_settings": shape(
            stripe.Customer.InvoiceSettings,
            {"default_payment_method": settings.get("default_payment_method")},
        ),
        "livemode": False,
        "metadata": customer.metadata,
        "name": customer.name,
        "next_invoice_sequence": len(invoices) + 1,
        "phone": customer.phone,
        "preferred_locales": customer.preferred_locales or [],
        "shipping": customer.shipping,
        "tax_exempt": "none",
        "test_clock": getattr(customer, "test_clock", None),
    }
    lists = [name for name in LISTS if name in {path.split(".", 1)[0] for path in expand}]
    for name in lists:
        values[name] = getattr(customer, name)._export()
    if "tax" in {path.split(".", 1)[0] for path in expand}:
        values["tax"] = render_customer_tax(customer)
    rendered = shape(stripe.Customer, values, expand=expand)
    return expanded(rendered, [path for path in expand if path.split(".", 1)[0] not in lists])


def extend_customers() -> None:
    """Render localstripe's customers as Stripe does at the pinned API version."""
    Customer._export = render_customer
