"""Driving the local Stripe emulator with the real `stripe` SDK: helpers for its tests."""

import json
import uuid
from typing import Any, Literal, Unpack

import stripe
from stripe.params import PriceCreateParams, PriceListParams, ProductCreateParams

API_KEY = "sk_test_emulator_tests"


def sdk_client(base_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": base_url}, max_network_retries=0)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def response_headers(obj: stripe.StripeObject) -> dict[str, str]:
    assert obj.last_response is not None
    return {name.lower(): value for name, value in obj.last_response.headers.items()}


def new_product(client: stripe.StripeClient, description: str | None = None) -> stripe.Product:
    params: ProductCreateParams = {"name": unique("Product")}
    if description is not None:
        params["description"] = description
    return client.v1.products.create(params=params)


def new_price(
    client: stripe.StripeClient,
    product_id: str,
    interval: Literal["day", "week", "month", "year"] | None = "month",
    *,
    currency: str = "usd",
    unit_amount: int = 1000,
    lookup_key: str | None = None,
    transfer_lookup_key: bool = False,
    active: bool = True,
) -> stripe.Price:
    """A price of `product_id`, recurring at `interval` (None: one-time); Stripe's defaults for
    what is not named."""
    params: PriceCreateParams = {
        "product": product_id,
        "currency": currency,
        "unit_amount": unit_amount,
    }
    if interval is not None:
        params["recurring"] = {"interval": interval}
    if lookup_key is not None:
        params["lookup_key"] = lookup_key
    if transfer_lookup_key:
        params["transfer_lookup_key"] = True
    if not active:
        params["active"] = False
    return client.v1.prices.create(params=params)


def price_ids(client: stripe.StripeClient, **params: Unpack[PriceListParams]) -> list[str]:
    return [price.id for price in client.v1.prices.list(params=params).auto_paging_iter()]


def events_of(client: stripe.StripeClient, object_id: str) -> list[str]:
    """The types of the events about `object_id`, oldest first."""
    return [event["type"] for event in events_about(client, object_id)]


def emulator_only(client: stripe.StripeClient, path: str, **params: Any) -> dict[str, Any]:
    """An emulator-only endpoint (what a customer or a test clock would do)."""
    return json.loads(client.raw_request("post", f"/_testing/{path}", **params).body)


def customer_with_card(client: stripe.StripeClient, card: str = "pm_card_visa") -> tuple[str, str]:
    customer = client.v1.customers.create(params={"email": f"{unique('bill')}@example.com"})
    payment_method = client.v1.payment_methods.attach(card, params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": payment_method.id}}
    )
    return customer.id, payment_method.id


def monthly(client: stripe.StripeClient, unit_amount: int) -> stripe.Price:
    return new_price(client, new_product(client).id, unit_amount=unit_amount)


def raw(client: stripe.StripeClient, method: str, path: str, **params: Any) -> dict[str, Any]:
    """The JSON object the emulator answers, as sent (not as the SDK models it)."""
    return json.loads(client.raw_request(method, path, **params).body)


def events_about(client: stripe.StripeClient, object_id: str) -> list[dict[str, Any]]:
    """The events about `object_id` as sent, oldest first (Stripe lists newest first)."""
    events = (e.to_dict() for e in client.v1.events.list(params={"limit": 100}).auto_paging_iter())
    return [e for e in events if e["data"]["object"].get("id") == object_id][::-1]


def payment_intent_of(client: stripe.StripeClient, invoice_id: str) -> str:
    """The id of the PaymentIntent an invoice collects with: since API version 2025-03-31 an
    invoice names it only in its (includable) `payments`."""
    invoice = client.v1.invoices.retrieve(invoice_id, params={"expand": ["payments"]})
    assert invoice.payments is not None
    [payment] = invoice.payments.data
    assert isinstance(payment.payment.payment_intent, str)
    return payment.payment.payment_intent
